from vkdoctor.cli import main

raise SystemExit(main())
