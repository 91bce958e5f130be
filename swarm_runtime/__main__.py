"""``python -m swarm_runtime``."""

from .cli import main

if __name__ == "__main__":
    main()
