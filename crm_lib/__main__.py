"""``python -m crm_lib`` is the ``crm-workbench`` console script."""
import sys

from crm_lib.cli import main

sys.exit(main())
