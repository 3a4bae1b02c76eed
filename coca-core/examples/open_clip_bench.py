"""open_clip's column of `docs/benchmarks.md`: the figures `bench` measures for coca, measured
the same way on open_clip 3.3.0 / PyTorch CPU, one JSON line per figure.

    pip install torch==2.11.0 open_clip_torch==3.3.0 transformers safetensors
    python coca-core/examples/open_clip_bench.py --checkpoint DIR [--threads 2] [--batch 16]
        [--tokens 30] [--repeats 2] [--beam-batch 4] [--only load,encode,decode,beam]

DIR holds the `open_clip_model.safetensors` that `bench --only load` wrote (random
coca_ViT-B-32 weights, in `$TMPDIR/coca-bench-coca_ViT-B-32/` by default), so both sides load
the same file. Timings are the best of `--repeats` after one warm-up, as `bench` takes them.
"""

import argparse
import json
import os
import time

import torch
import open_clip
from safetensors.torch import load_file


def best_of(repeats, f):
    f()
    best = float("inf")
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--beam-batch", type=int, default=4)
    p.add_argument("--only", default="load,encode,decode,beam")
    a = p.parse_args()
    want = set(a.only.split(","))
    torch.set_num_threads(a.threads)
    base = {
        "impl": "open_clip " + open_clip.__version__,
        "torch": torch.__version__,
        "preset": "coca_ViT-B-32",
        "device": "cpu",
        "threads": a.threads,
    }

    def emit(**kw):
        print(json.dumps({**base, **kw}), flush=True)

    t = time.perf_counter()
    model = open_clip.create_model("coca_ViT-B-32", pretrained=None)
    create_s = time.perf_counter() - t
    model.eval()
    path = os.path.join(a.checkpoint, "open_clip_model.safetensors")

    if "load" in want:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            sd = load_file(path)
            t1 = time.perf_counter()
            model.load_state_dict(sd, strict=True)
            t2 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1))
            del sd
        lf, ls = min(runs, key=lambda r: r[0] + r[1])
        emit(
            figure="load",
            seconds=lf + ls,
            load_file_s=lf,
            load_state_dict_s=ls,
            create_model_s=create_s,
            what="safetensors load_file + load_state_dict (best of 3); create_model (random init) apart",
        )
    else:
        model.load_state_dict(load_file(path), strict=True)

    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    torch.manual_seed(0)
    with torch.no_grad():
        images = torch.randn(a.batch, 3, size, size)
        enc_s = best_of(a.repeats, lambda: model.encode_image(images))
        if "encode" in want:
            emit(
                figure="encode",
                batch=a.batch,
                images_per_s=a.batch / enc_s,
                what="encode_image, preprocessing excluded",
            )
        if "decode" in want:
            # top_k with k = 1 is greedy; min_seq_len keeps EOS away, so exactly `tokens` new
            # tokens follow the start token (as `bench`'s ignore_eos).
            n = a.tokens + 1

            def run():
                return model.generate(
                    images,
                    generation_type="top_k",
                    top_k=1,
                    seq_len=n,
                    min_seq_len=n - 1,
                )

            secs = best_of(a.repeats, run)
            out = run()
            emit(
                figure="decode_uncached",
                batch=a.batch,
                tokens=int(out.shape[1]) - 1,
                images_per_s_incl_encoding=a.batch / secs,
                images_per_s=a.batch / max(secs - enc_s, 1e-9),
                s_per_step=(secs - enc_s) / a.tokens,
                what="generate(top_k=1): its loop reruns the decoder on the whole prefix each step",
            )
        if "beam" in want:
            bb = a.beam_batch
            imgs = images[:bb]

            def beam():
                return model.generate(
                    imgs,
                    generation_type="beam_search",
                    num_beams=6,
                    num_beam_groups=3,
                    seq_len=a.tokens,
                )

            secs = best_of(max(a.repeats - 1, 1), beam)
            emit(
                figure="open_clip_beam_6_in_3_groups",
                batch=bb,
                images_per_s_incl_encoding=bb / secs,
                what="generate(beam_search, 6 beams, 3 groups, seq_len=tokens), stops at EOS",
            )


if __name__ == "__main__":
    main()
