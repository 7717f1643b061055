from jamsdk.cli import main

raise SystemExit(main())
