"""linebreak: the line-break character-count manifold, its QK twist, and the mod-P Fourier reference.

Pipeline (data flows one way)::

    generate -> train -> capture -> probes / manifold / qk / causal -> plots, report
                                        ^ fourier (shared), modp (reference case)
"""

__version__ = "0.1.0"
