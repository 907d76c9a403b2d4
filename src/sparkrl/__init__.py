"""sparkrl: SPARK (Synergistic Policy And Reward Co-Evolving) on top of TRL's GRPOTrainer.

One model is trained with RL from verifiable rewards as a policy, and the rollouts of each
step are recycled into judging and reflection prompts that train the same model as its own
generative reward model. See README.md and docs/ for the method and its departures.
"""

__version__ = "0.1.0"
