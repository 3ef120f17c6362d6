from lgn.cli import main

raise SystemExit(main())
