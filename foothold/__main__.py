from foothold._entry import main

raise SystemExit(main())
