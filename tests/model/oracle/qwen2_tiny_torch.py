#!/usr/bin/python3
"""Independent f32 reference for ../shared/fixtures/qwen2-tiny computed from its STORED BF16 weights.

The fixture's own reference.json was computed from weights before BF16 rounding (its loss differs
by 9e-4 and its hidden state by ~7e-3 at position 0, the size of BF16 rounding noise), so it cannot
serve as a 1e-4 reference for any implementation that reads the shipped checkpoint. This script is
a plain PyTorch re-implementation of transformers' Qwen2ForCausalLM (QKV bias, GQA, rotate-half
RoPE, RMSNorm in f32, SiLU MLP, tied head) and writes logits, final hidden state, the mean
next-token loss and every parameter gradient (HF names) to qwen2_tiny_reference.safetensors.

Run: /usr/bin/python3 tests/model/oracle/qwen2_tiny_torch.py ../shared/fixtures/qwen2-tiny
(Debian: apt-get install -y python3-torch python3-numpy)
"""
import json, math, struct, sys
from pathlib import Path
import numpy as np
import torch

fixture = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures/qwen2-tiny")
out = Path(__file__).with_name("qwen2_tiny_reference.safetensors")
cfg = json.loads((fixture / "config.json").read_text())
ids = torch.tensor(json.loads((fixture / "reference.json").read_text())["input_ids"])

raw = (fixture / "model.safetensors").read_bytes()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + n])
data = raw[8 + n :]
params = {}
for name, info in header.items():
    if name == "__metadata__":
        continue
    assert info["dtype"] == "BF16", name
    a, b = info["data_offsets"]
    bits = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
    params[name] = torch.tensor(bits.view(np.float32).reshape(info["shape"]), requires_grad=True)

T, D = len(ids), cfg["hidden_size"]
H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
hd = D // H
eps = cfg["rms_norm_eps"]


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    return torch.cat([-x[..., hd // 2 :], x[..., : hd // 2]], -1)


inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
angles = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)

p = params
x = p["model.embed_tokens.weight"][ids]
for layer in range(cfg["num_hidden_layers"]):
    pre = f"model.layers.{layer}."
    h = rms(x, p[pre + "input_layernorm.weight"])
    q = (h @ p[pre + "self_attn.q_proj.weight"].T + p[pre + "self_attn.q_proj.bias"]).view(T, H, hd).transpose(0, 1)
    k = (h @ p[pre + "self_attn.k_proj.weight"].T + p[pre + "self_attn.k_proj.bias"]).view(T, KV, hd).transpose(0, 1)
    v = (h @ p[pre + "self_attn.v_proj.weight"].T + p[pre + "self_attn.v_proj.bias"]).view(T, KV, hd).transpose(0, 1)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    attn = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
    x = x + attn.transpose(0, 1).reshape(T, D) @ p[pre + "self_attn.o_proj.weight"].T
    h = rms(x, p[pre + "post_attention_layernorm.weight"])
    gate = torch.nn.functional.silu(h @ p[pre + "mlp.gate_proj.weight"].T)
    x = x + (gate * (h @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
hidden = rms(x, p["model.norm.weight"])
logits = hidden @ p["model.embed_tokens.weight"].T
loss = torch.nn.functional.cross_entropy(logits[:-1], ids[1:])
loss.backward()

tensors = {"logits": logits.detach(), "final_hidden": hidden.detach(), "loss": loss.detach().reshape(1)}
tensors.update({f"grad.{name}": t.grad for name, t in params.items()})
meta, offset, blobs = {}, 0, []
for name, t in tensors.items():
    blob = t.contiguous().numpy().astype("<f4").tobytes()
    meta[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
head = json.dumps(meta, separators=(",", ":")).encode()
head += b" " * ((8 - len(head) % 8) % 8)
out.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))
print(json.dumps({"loss": loss.item(), "written": str(out)}))
