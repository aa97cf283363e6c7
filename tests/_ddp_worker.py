"""Launched by tests/test_distributed.py through torchrun: runs the real CLI
(`histolib.train.main`) and, after training, writes this rank's weights to
<out>/rank<r>_step<s>.pt so the test can compare ranks."""
import sys

import torch

from histolib import train


def main():
    out = sys.argv[1]
    original = train.Trainer.train

    def train_and_dump(self, *args, **kwargs):
        rows = original(self, *args, **kwargs)
        state = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        state.update({f"D.{k}": v for k, v in self.D.state_dict().items()})
        state.update({f"E.{k}": v for k, v in self.G_ema.state_dict().items()})
        torch.save(state, f"{out}/rank{self.rank}_step{self.step_count}.pt")
        return rows

    train.Trainer.train = train_and_dump
    return train.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
