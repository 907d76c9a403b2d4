"""The embedded demo (`sparkrl demo`): SPARK against plain GRPO on a tiny model, on a CPU.

Modules: `workload` (what a modality supplies), `runs` (the RL runs, launched through
`sparkrl train`), `measure` (held-out evaluation through `sparkrl.evaluation`), `report`
(tables and plots), `pipeline` (the stages, resumable).
"""
