"""The embedded image setup: a shape-counting task rendered with PIL, a tiny LLaVA, a warm start.

The vision-language counterpart of `sparkrl.tiny`, small enough to train with SPARK on a CPU.
See docs/vision.md.
"""
