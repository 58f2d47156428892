import sys

from access_audit.cli import main

sys.exit(main())
