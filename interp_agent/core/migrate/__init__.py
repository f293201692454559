"""Results made with other tools, converted into ours: interp-lab's reports, match reports and run configs."""
