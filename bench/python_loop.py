#!/usr/bin/env python3
"""The loop a user would write without the nlclderain element: the baseline of `nlcl bench` (b).

Decodes a video with OpenCV, normalises each frame with numpy to the NLCL contract (RGB, NCHW,
float32 in [-1, 1]), runs `onnxruntime.InferenceSession.run` with `intra_op_num_threads=T`,
de-normalises and encodes with `cv2.VideoWriter`. Prints one JSON line:
{"frames", "seconds", "fps", "peak_rss_kb", ...}.

The clock starts once the first frame is decoded (imports, session creation and opening the
files are not timed) and stops after the writer is released (the file is complete), the same
span `nlcl bench` times for the element's pipeline.

Usage: python_loop.py --model M.onnx --input clip.mp4 --output out.mp4 [--threads 2] [--fourcc mp4v]
"""

import argparse
import json
import resource
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fourcc", default="mp4v", help="cv2.VideoWriter codec (FFmpeg backend)")
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.model, sess_options=opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    m = int(meta.get("nlcl.size_multiple", "1"))

    cap = cv2.VideoCapture(args.input)
    if not cap.isOpened():
        print(f"python_loop: cannot open {args.input}", file=sys.stderr)
        return 1
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(args.output, cv2.VideoWriter_fourcc(*args.fourcc), fps_in, (w, h))
    if not writer.isOpened():
        print(f"python_loop: cannot open a {args.fourcc} writer for {args.output}", file=sys.stderr)
        return 1
    ph, pw = -(-h // m) * m, -(-w // m) * m

    ok, bgr = cap.read()
    start = time.perf_counter()
    frames = 0
    while ok:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32) / 127.5 - 1.0
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        if (ph, pw) != (h, w):
            x = np.pad(x, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode="edge")
        (clean,) = sess.run(["clean"], {"rainy": x})
        y = clean[0, :, :h, :w].transpose(1, 2, 0)
        y = np.rint((np.clip(y, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        writer.write(cv2.cvtColor(y, cv2.COLOR_RGB2BGR))
        frames += 1
        ok, bgr = cap.read()
    cap.release()
    writer.release()
    seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "frames": frames,
                "seconds": seconds,
                "fps": frames / seconds if seconds > 0 else 0.0,
                # Linux reports ru_maxrss in KiB.
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "width": w,
                "height": h,
                "threads": args.threads,
                "fourcc": args.fourcc,
                "onnxruntime": ort.__version__,
                "opencv": cv2.__version__,
                "numpy": np.__version__,
            }
        )
    )
    return 0 if frames > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
