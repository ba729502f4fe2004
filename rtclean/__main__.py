from rtclean.cli import main

raise SystemExit(main())
