from cplir.cli import main

raise SystemExit(main())
