import sys

from modelplane.worker.main import main

sys.exit(main())
