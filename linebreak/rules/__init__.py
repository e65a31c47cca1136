"""Every rule that decides "agrees with the paper", and every literature anchor, with the source it cites.

One module per stage holds that stage's thresholds (:mod:`linebreak.rules.qk`, ...); :mod:`linebreak.rules.anchors`
holds the literature values the report prints beside each finding. The analyses import their thresholds from
here, and the report prints them from here, so a rule is written once.
"""
