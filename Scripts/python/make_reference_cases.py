"""Reference outputs of guided-diffusion's UNetModel (the original implementation, float64) for
architecture options the shared fixtures do not cover. Writes, per case, weights.safetensors,
fixture.json (options under "config"), input0.npy, timesteps0.npy and output0.npy.

Run: Scripts/make-reference-cases (it uses the git-ignored .venv with torch and
guided-diffusion-sdk). The outputs are committed under Tests/SVINetworkTests/Reference/."""
import json, os, struct, sys
import numpy as np
import torch
import guided_diffusion.unet as gd_unet
from guided_diffusion.unet import UNetModel
from guided_diffusion.script_util import create_model
import guided_diffusion.nn as gd_nn
from weights_io import randomise, save_safetensors

# The reference computes some parts in float32 by design (timestep embedding, GroupNorm32);
# for a float64 reference those follow the input's dtype instead.
_embedding = gd_unet.timestep_embedding
gd_unet.timestep_embedding = lambda t, dim, max_period=10000: _embedding(t, dim, max_period).double()
gd_nn.GroupNorm32.forward = lambda self, x: torch.nn.GroupNorm.forward(self, x)

CASES = {
    # New attention order (q/k/v first, then heads), separate head count when upsampling,
    # non-square input, odd multiplier list.
    "new-order": dict(kind="create_model", opts=dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,3",
                      learn_sigma=False, class_cond=False, use_checkpoint=False, attention_resolutions="16,8", num_heads=2,
                      num_head_channels=-1, num_heads_upsample=4, use_scale_shift_norm=True, dropout=0.0, resblock_updown=False,
                      use_fp16=False, use_new_attention_order=True), shape=(2, 3, 24, 36), t=[37, 611]),
    # Parameter-free resampling (average pool / nearest), no scale-shift, two res blocks.
    "pool-nearest": dict(kind="UNetModel", opts=dict(image_size=32, in_channels=3, model_channels=32, out_channels=6,
                         num_res_blocks=2, attention_resolutions=(2,), dropout=0.0, channel_mult=(1, 2), conv_resample=False,
                         num_heads=4, num_head_channels=-1, use_scale_shift_norm=False, resblock_updown=False,
                         use_new_attention_order=False),
                         config=dict(image_size=32, num_channels=32, num_res_blocks=2, channel_mult="1,2", learn_sigma=True,
                                     attention_resolutions="16", num_heads=4, resblock_updown=False, use_scale_shift_norm=False,
                                     conv_resample=False), shape=(1, 3, 20, 28), t=[999]),
}


def main(out):
    for name, c in CASES.items():
        d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
        model = (create_model(**c["opts"]) if c["kind"] == "create_model" else UNetModel(**c["opts"])).eval()
        randomise(model, 1, bias_std=0.1)
        save_safetensors(model.state_dict(), os.path.join(d, "weights.safetensors"))
        # Float64 forward from the float32-rounded weights, as the shared fixtures were made.
        model = model.double()
        model.dtype = torch.float64
        with torch.no_grad():
            for p in model.parameters(): p.copy_(p.float().double())
        g = torch.Generator().manual_seed(2)
        x = torch.randn(c["shape"], generator=g).float()
        t = torch.tensor(c["t"], dtype=torch.int64)
        with torch.no_grad():
            y = model(x.double(), t).float()
        np.save(os.path.join(d, "input0.npy"), x.numpy().astype("<f4"))
        np.save(os.path.join(d, "timesteps0.npy"), t.numpy().astype("<i8"))
        np.save(os.path.join(d, "output0.npy"), y.numpy().astype("<f4"))
        config = c.get("config") or {k: v for k, v in c["opts"].items() if k not in ("class_cond", "use_checkpoint", "use_fp16", "dropout")}
        json.dump({"reference": "guided-diffusion UNetModel, float64 forward, float32 files (Scripts/make-reference-cases)",
                   "config": config, "cases": [{"input": "input0.npy", "timesteps": "timesteps0.npy", "output": "output0.npy"}]},
                  open(os.path.join(d, "fixture.json"), "w"), indent=1)
        print(name, tuple(y.shape), sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main(sys.argv[1])
