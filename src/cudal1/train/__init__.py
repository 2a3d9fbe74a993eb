"""train layer: CUDA-L1's three training stages, with the judge as the only source of reward.

- `sft_data.run_sft_data`: teacher LLMs -> judged-correct (prompt, completion) records
- `sft.run_sft` / `sft.fine_tune`: TRL SFTTrainer (LoRA optional)
- `self_train.run_self_train`: sample -> judge -> keep successes -> fine-tune, repeated
- `rl.run_rl`: TRL GRPOTrainer on live contrastive prompts, `reward.JudgeReward` as the reward

Configs are the dataclasses of `config` (YAML + ``KEY=VALUE`` overrides). transformers, trl,
peft and datasets are imported only inside the functions that need them (``cudal1[train]``).
"""

from .config import (
                     STAGE_CONFIGS,
                     ConfigError,
                     JudgeOptions,
                     ModelConfig,
                     RewardConfig,
                     RLConfig,
                     SamplingArgs,
                     SelfTrainConfig,
                     SFTConfig,
                     SFTDataConfig,
                     TaskSelection,
                     TrainArgs,
                     load_config,
)
from .reward import (
                     JudgeReward,
                     normalize_groups,
                     raw_reward,
                     smoothed_speedup,
                     smoothed_time,
)

__all__ = [
                     "STAGE_CONFIGS",
                     "ConfigError",
                     "JudgeOptions",
                     "JudgeReward",
                     "ModelConfig",
                     "RLConfig",
                     "RewardConfig",
                     "SFTConfig",
                     "SFTDataConfig",
                     "SamplingArgs",
                     "SelfTrainConfig",
                     "TaskSelection",
                     "TrainArgs",
                     "load_config",
                     "normalize_groups",
                     "raw_reward",
                     "smoothed_speedup",
                     "smoothed_time",
]
