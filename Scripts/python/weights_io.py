"""Shared by the benchmark and reference-case scripts: random weights for a guided-diffusion
model and a plain safetensors writer (no extra package needed)."""
import json, struct
import torch


def randomise(model, seed, bias_std=0.01):
    """The reference zero-initialises some layers; random weights everywhere exercise them all:
    N(0, 1/fan_in) for weights, N(1, 0.1²) for norm scales, N(0, bias_std²) for biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) / p[0].numel() ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            else:
                p.copy_(bias_std * torch.randn(p.shape, generator=g, dtype=p.dtype))


def save_safetensors(state, path, half=False, metadata=None):
    """Writes `state` as safetensors (F32, or F16 when `half`) through a temporary name."""
    import os
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    dtype, tag = (torch.float16, "F16") if half else (torch.float32, "F32")
    for k, v in state.items():
        a = v.detach().cpu().to(dtype).contiguous().numpy()
        header[k] = {"dtype": tag, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a); offset += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for a in blobs: f.write(a.tobytes())
    os.replace(tmp, path)
