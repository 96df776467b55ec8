#!/usr/bin/env python3
"""Write the fuzzers' seed corpus (fuzz/corpus/{safetensors,config}/).

Deterministic: running it again rewrites the same bytes. Every valid
safetensors seed is a whole checkpoint for SEED_CONFIG (config/valid_small.json),
so tests/test_fuzz_regressions.c can load it with retcl_model_load; the
broken ones each break one rule of the format. Files stay a few KB.

    python3 fuzz/make_corpus.py            # writes next to this script
"""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ST_DIR = os.path.join(HERE, "corpus", "safetensors")
CFG_DIR = os.path.join(HERE, "corpus", "config")

# Small, Dk (4) != Dv (6), no two sizes equal; keep in step with
# tests/test_fuzz_regressions.c.
SEED_CONFIG = {
    "decoder_embed_dim": 8,
    "decoder_value_embed_dim": 12,
    "decoder_retention_heads": 2,
    "decoder_ffn_embed_dim": 10,
    "decoder_layers": 1,
    "vocab_size": 7,
    "activation_fn": "swish",
    "layernorm_eps": 1e-06,
    "no_scale_embedding": True,
    "layernorm_embedding": False,
    "deepnorm": False,
    "share_decoder_input_output_embed": False,
    "recurrent_chunk_size": 4,
}


def checkpoint_tensors(cfg, prefix=""):
    """(name, shape) of every tensor a checkpoint of cfg holds."""
    d = cfg["decoder_embed_dim"]
    dv = cfg["decoder_value_embed_dim"]
    f = cfg["decoder_ffn_embed_dim"]
    V = cfg["vocab_size"]
    H = cfg["decoder_retention_heads"]
    out = [("embed_tokens.weight", [V, d])]
    for l in range(cfg["decoder_layers"]):
        p = "layers.%d." % l
        out += [
            (p + "retention.q_proj.weight", [d, d]),
            (p + "retention.k_proj.weight", [d, d]),
            (p + "retention.v_proj.weight", [dv, d]),
            (p + "retention.g_proj.weight", [dv, d]),
            (p + "retention.out_proj.weight", [d, dv]),
            (p + "retention_layer_norm.weight", [d]),
            (p + "ffn.fc1.weight", [f, d]),
            (p + "ffn.gate.weight", [f, d]),
            (p + "ffn.fc2.weight", [d, f]),
            (p + "final_layer_norm.weight", [d]),
        ]
    out += [
        ("layer_norm.weight", [d]),
        ("output_projection.weight", [V, d]),
        ("retnet_rel_pos.angle", [d // H]),
        ("retnet_rel_pos.decay", [H]),
    ]
    return [(prefix + n, s) for n, s in out]


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def bf16_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


def encode(values, dtype):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%dH" % len(values), *map(f16_bits, values))
    if dtype == "BF16":
        return struct.pack("<%dH" % len(values), *map(bf16_bits, values))
    raise ValueError(dtype)


def safetensors(entries, metadata=None, pad_to=8, header_text=None):
    """entries: (name, dtype, shape, data bytes). Returns the file bytes."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = header_text if header_text is not None else json.dumps(
        header, separators=(",", ":"))
    raw = text.encode()
    raw += b" " * (-len(raw) % pad_to)  # the format's space padding
    return struct.pack("<Q", len(raw)) + raw + data


def checkpoint(rng, dtype="F32", prefix="", extra=()):
    entries = []
    for name, shape in checkpoint_tensors(SEED_CONFIG, prefix):
        n = 1
        for s in shape:
            n *= s
        values = [rng.uniform(-1, 1) for _ in range(n)]
        entries.append((name, dtype, shape, encode(values, dtype)))
    return entries + list(extra)


def write(directory, name, blob):
    os.makedirs(directory, exist_ok=True)
    if isinstance(blob, str):
        blob = blob.encode()
    assert len(blob) < 20000, name
    with open(os.path.join(directory, name), "wb") as f:
        f.write(blob)


def safetensors_seeds():
    rng = random.Random(20240501)
    seeds = {}
    seeds["valid_f32.safetensors"] = safetensors(checkpoint(rng))
    seeds["valid_f16.safetensors"] = safetensors(checkpoint(rng, "F16"))
    seeds["valid_bf16.safetensors"] = safetensors(checkpoint(rng, "BF16"))
    seeds["valid_decoder_prefix.safetensors"] = safetensors(
        checkpoint(rng, prefix="decoder."))
    seeds["valid_metadata_and_i64.safetensors"] = safetensors(
        checkpoint(rng, extra=[("step", "I64", [], struct.pack("<q", 1234))]),
        metadata={"format": "pt", "source": "torchscale"})
    mixed = []
    for i, (name, shape) in enumerate(checkpoint_tensors(SEED_CONFIG)):
        dtype = ("F32", "F16", "BF16")[i % 3]
        values = [rng.uniform(-1, 1) for _ in range(_prod(shape))]
        mixed.append((name, dtype, shape, encode(values, dtype)))
    seeds["valid_mixed_dtypes.safetensors"] = safetensors(mixed)
    seeds["empty_header.safetensors"] = safetensors([])
    seeds["metadata_only.safetensors"] = safetensors(
        [], metadata={"format": "pt"})
    small = [("a", "F32", [2, 3], encode([1, 2, 3, 4, 5, 6], "F32")),
             ("b", "F16", [4], encode([0.5, -2, 65504, 6e-8], "F16")),
             ("c", "BF16", [1, 1, 2], encode([1e30, -1e-30], "BF16")),
             ("z", "F32", [0, 5], b""),
             ("s", "F32", [], encode([3.25], "F32"))]
    seeds["small_tensors.safetensors"] = safetensors(small)
    seeds["rank8.safetensors"] = safetensors(
        [("r", "F32", [1, 1, 1, 1, 1, 1, 1, 2], encode([1, 2], "F32"))])
    seeds["unpadded_header.safetensors"] = safetensors(small, pad_to=1)
    # Broken, one rule each.
    seeds["bad_rank9.safetensors"] = safetensors(
        [("r", "F32", [1] * 9, encode([1], "F32"))])
    seeds["bad_offsets_past_end.safetensors"] = safetensors(
        small, header_text=json.dumps(
            {"a": {"dtype": "F32", "shape": [2, 3],
                   "data_offsets": [0, 4000]}}))
    seeds["bad_offsets_reversed.safetensors"] = safetensors(
        small, header_text=json.dumps(
            {"a": {"dtype": "F32", "shape": [0],
                   "data_offsets": [8, 4]}}))
    seeds["bad_shape_mismatch.safetensors"] = safetensors(
        small, header_text=json.dumps(
            {"a": {"dtype": "F16", "shape": [2, 3],
                   "data_offsets": [0, 24]}}))
    seeds["bad_negative_dim.safetensors"] = safetensors(
        small, header_text=json.dumps(
            {"a": {"dtype": "F32", "shape": [-2, -3],
                   "data_offsets": [0, 24]}}))
    seeds["bad_huge_dims.safetensors"] = safetensors(
        small, header_text=json.dumps(
            {"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16],
                   "data_offsets": [0, 24]}}))
    seeds["bad_float_offsets.safetensors"] = safetensors(
        small, header_text='{"a":{"dtype":"F32","shape":[2,3],'
                           '"data_offsets":[0.5,24]}}')
    seeds["bad_duplicate_prefix.safetensors"] = safetensors(
        [("decoder.a", "F32", [1], encode([1], "F32")),
         ("a", "F32", [1], encode([2], "F32"))])
    seeds["bad_entry_not_object.safetensors"] = safetensors(
        [], header_text='{"a":[1,2,3],"b":"F32"}')
    seeds["bad_missing_dtype.safetensors"] = safetensors(
        small, header_text='{"a":{"shape":[2,3],"data_offsets":[0,24]}}')
    seeds["bad_header_not_object.safetensors"] = safetensors(
        small, header_text='[{"dtype":"F32"}]')
    seeds["bad_header_trailing.safetensors"] = safetensors(
        [], header_text='{} {}')
    seeds["bad_header_invalid_json.safetensors"] = safetensors(
        [], header_text='{"a":{"dtype":"F32","shape":[1],')
    seeds["bad_header_nul.safetensors"] = (
        struct.pack("<Q", 8) + b'{"a":\x00}  ')
    seeds["bad_header_len_too_big.safetensors"] = (
        struct.pack("<Q", 1 << 40) + b"{}      ")
    seeds["bad_header_len_wraps.safetensors"] = (
        struct.pack("<Q", (1 << 64) - 1) + b"{}      ")
    seeds["bad_too_short.safetensors"] = b"\x02\x00\x00"
    seeds["bad_truncated_checkpoint.safetensors"] = (
        seeds["valid_f32.safetensors"][:-100])
    seeds["bad_checkpoint_wrong_shape.safetensors"] = safetensors(
        [(n, dt, ([s[1], s[0]] if len(s) == 2 else s), b)
         for n, dt, s, b in checkpoint(rng)])
    seeds["bad_checkpoint_missing_tensor.safetensors"] = safetensors(
        checkpoint(rng)[1:])
    seeds["bad_checkpoint_i32_weight.safetensors"] = safetensors(
        [(n, "I32" if n.endswith("fc2.weight") else dt, s, b)
         for n, dt, s, b in checkpoint(rng)])
    return seeds


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def config_seeds():
    seeds = {}
    dump = lambda obj: json.dumps(obj, indent=2) + "\n"
    seeds["valid_small.json"] = dump(SEED_CONFIG)
    torchscale = {  # what torchscale's RetNetConfig.to_dict() writes
        "decoder_embed_dim": 768, "decoder_value_embed_dim": 1280,
        "decoder_retention_heads": 3, "decoder_ffn_embed_dim": 1280,
        "decoder_layers": 12, "decoder_normalize_before": True,
        "activation_fn": "gelu", "dropout": 0.0, "drop_path_rate": 0.0,
        "activation_dropout": 0.0, "no_scale_embedding": True,
        "layernorm_embedding": False, "moe_freq": 0, "moe_top1_expert": False,
        "moe_expert_count": 0, "moe_gating_use_fp32": True,
        "moe_eval_capacity_token_fraction": 0.25,
        "moe_second_expert_policy": "random",
        "moe_normalize_gate_prob_before_dropping": False,
        "use_xmoe": False, "rel_pos_buckets": 0, "max_rel_pos": 0,
        "deepnorm": False, "subln": True, "use_ffn_rms_norm": False,
        "layernorm_eps": 1e-06, "vocab_size": 32000,
        "checkpoint_activations": False, "fsdp": False, "ddp_rank": 0,
        "xpos_rel_pos": False, "xpos_scale_base": 512,
        "share_decoder_input_output_embed": False,
        "recurrent_chunk_size": 512, "torchscale_version": "0.3.0",
    }
    seeds["valid_torchscale.json"] = dump(torchscale)
    seeds["valid_minimal.json"] = dump(
        {"decoder_embed_dim": 16, "decoder_retention_heads": 2,
         "decoder_layers": 1, "vocab_size": 11})
    seeds["valid_numeric_flags.json"] = dump(
        dict(SEED_CONFIG, no_scale_embedding=0, layernorm_embedding=1,
             deepnorm=1, share_decoder_input_output_embed=1,
             activation_fn="silu", layernorm_eps=1e-5))
    seeds["valid_gelu_exponent.json"] = (
        '{"decoder_embed_dim":8.0e0,"decoder_retention_heads":2,'
        '"decoder_layers":1,"vocab_size":7,"activation_fn":"gelu",'
        '"layernorm_eps":1E-5}')
    broken = {
        "bad_missing_heads.json": {k: v for k, v in SEED_CONFIG.items()
                                   if k != "decoder_retention_heads"},
        "bad_negative_vocab.json": dict(SEED_CONFIG, vocab_size=-1),
        "bad_fractional_dim.json": dict(SEED_CONFIG, decoder_embed_dim=8.5),
        "bad_huge_dim.json": dict(SEED_CONFIG, decoder_ffn_embed_dim=1e300),
        "bad_string_dim.json": dict(SEED_CONFIG, decoder_layers="1"),
        "bad_flag.json": dict(SEED_CONFIG, deepnorm=2),
        "bad_activation.json": dict(SEED_CONFIG, activation_fn="relu"),
        "bad_activation_type.json": dict(SEED_CONFIG, activation_fn=1),
        "bad_eps_zero.json": dict(SEED_CONFIG, layernorm_eps=0),
        "bad_eps_string.json": dict(SEED_CONFIG, layernorm_eps="1e-6"),
        "bad_heads_not_dividing.json": dict(SEED_CONFIG,
                                            decoder_retention_heads=3),
        "bad_odd_head_dim.json": dict(SEED_CONFIG, decoder_embed_dim=6),
        "bad_head_dim_too_large.json": dict(SEED_CONFIG,
                                            decoder_embed_dim=4096,
                                            decoder_retention_heads=2),
        "bad_matrix_overflow.json": dict(SEED_CONFIG,
                                         vocab_size=2 ** 52,
                                         decoder_embed_dim=2 ** 10,
                                         decoder_retention_heads=1),
    }
    for name, obj in broken.items():
        seeds[name] = dump(obj)
    seeds["bad_not_object.json"] = "[1, 2, 3]\n"
    seeds["bad_truncated.json"] = dump(SEED_CONFIG)[:60]
    seeds["bad_empty.json"] = ""
    seeds["bad_eps_huge.json"] = dump(SEED_CONFIG).replace(
        "1e-06", "1e+300")
    return seeds


def main():
    for name, blob in safetensors_seeds().items():
        write(ST_DIR, name, blob)
    for name, blob in config_seeds().items():
        write(CFG_DIR, name, blob)


if __name__ == "__main__":
    main()
