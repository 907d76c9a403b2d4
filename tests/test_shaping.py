from sparkrl.shaping import boxed_format, length_penalty


def test_boxed_format_rewards_a_final_box_only():
    completions = ["so \\boxed{4}", "#### 4", "\\boxed{}", "\\boxed{3", [{"role": "assistant", "content": "\\boxed{x}"}]]
    assert boxed_format([None] * 5, completions) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_length_penalty_is_a_fixed_price_per_thousand_tokens():
    ids = [[7] * 250, [], [7] * 1000]
    assert length_penalty([None] * 3, ["x"] * 3, completion_ids=ids) == [-0.25, 0.0, -1.0]
