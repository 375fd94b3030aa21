import sys
from mpesa_ops.cli import main

sys.exit(main())
