import sys

from loadtest.scoring.report.build import main

sys.exit(main())
