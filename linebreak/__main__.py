from linebreak.cli import main

raise SystemExit(main())
