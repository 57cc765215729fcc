"""The exploratory single-style loop behind benchmarks/sweeps/stylize_feedforward_loop.csv (session 10), kept as run.

A plain torch loop (no Lightning, no MLflow) that trains one feed-forward style network per style for ``--steps``
AdamW steps on random crops of the training photographs, then grades it on the validation photographs (rocket,
flower; never a test photograph) with the fixed evaluation network. It tried variants the pipeline does not keep
(``--texture matched``: a straight-through histogram-matched texture loss; ``--colour channels``: per-channel
histograms; ``--output clamp``), so it carries its own copies of the noise input and colour jitter; what was kept
lives in the code (``stylize.model.noise_channels``, ``stylize.train.augment``, ``stylize.train.loss``). Rows
are appended to /tmp/exp/results.jsonl. Run from the project root after `dvc repro stylize_prepare`, e.g.

    python benchmarks/sweeps/stylize_feedforward_loop.py --tag n2s100aug --noise 2 --gram centred \
        --colour sliced --colour-weight 100 --augment colour --styles ihc
"""
import argparse, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
import yaml
from cnnrnn.reproducibility import pin_numerics
P = yaml.safe_load(open(ROOT / "params.yaml"))
pin_numerics({**P["runtime"], "threads": int(sys.argv[sys.argv.index("--threads")+1]) if "--threads" in sys.argv else 2})
import torch, torch.nn.functional as F
from cnnrnn.stylize.crops import random_crop
from cnnrnn.stylize.loss_network import build_loss_network
from cnnrnn.stylize.network import build_style_network
from cnnrnn.stylize.features import evaluation_network, level_distances
from cnnrnn.stylize.measures import style_loss_ratio, content_ssim, color_distance
from cnnrnn.stylize.optimize import total_variation

ap = argparse.ArgumentParser()
ap.add_argument("--styles", nargs="+", default=["ihc"])
ap.add_argument("--holdout", nargs="*", default=["flower"])
ap.add_argument("--steps", type=int, default=250)
ap.add_argument("--texture", default="plain", choices=["plain", "matched"])
ap.add_argument("--colour-weight", type=float, default=0.0)
ap.add_argument("--style-weight", type=float, default=100.0)
ap.add_argument("--content-weight", type=float, default=1.0)
ap.add_argument("--augment", default="none", choices=["none", "colour"])
ap.add_argument("--output", default="logit", choices=["logit", "clamp"])
ap.add_argument("--lr", type=float, default=0.002)
ap.add_argument("--tag", default="x")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--noise", type=int, default=0)
ap.add_argument("--colour", default="channels", choices=["channels", "sliced"])
ap.add_argument("--gram", default="plain")
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--tv", type=float, default=0.1)
a = ap.parse_args()
S = P["stylize"]
torch.manual_seed(a.seed)
prep = ROOT / "data" / "stylize" / "prepared"
def load(split):
    d = torch.load(prep / f"{split}.pt"); return dict(zip([Path(n).stem for n in d["names"]], d["images"]))
train, val, styles = load("train"), load("val"), load("styles")
for h in a.holdout:
    if h in train: val[h] = train.pop(h)
print("train", list(train), "val", list(val), file=sys.stderr)
loss_cfg = {**S["loss"], "style_weight": a.style_weight, "content_weight": a.content_weight}
levels, _ = build_loss_network({**loss_cfg, "gram": a.gram}, None, 42)
train_images = list(train.values())

def hist_match(x, ref_sorted):
    """x (B,3,H,W); ref_sorted (3, M) sorted style values -> each channel given the style's histogram (no grad)."""
    b, c, h, w = x.shape
    n = h * w
    q = torch.linspace(0, 1, n)
    refq = torch.stack([torch.from_numpy(__import__('numpy').interp(q.numpy(), torch.linspace(0, 1, ref_sorted.shape[1]).numpy(), ref_sorted[i].numpy())).float() for i in range(3)])
    flat = x.reshape(b, c, n)
    order = flat.argsort(dim=2)
    out = torch.empty_like(flat)
    out.scatter_(2, order, refq[None].expand(b, c, n).contiguous())
    return out.reshape(b, c, h, w)

def augment(crops):
    if a.augment == "none":
        return crops
    out = []
    for x in crops:
        perm = torch.randperm(3)
        x = x[perm]
        # saturation / brightness / contrast jitter
        g = (x * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
        sat = float(torch.empty(()).uniform_(0.5, 1.5))
        x = g + (x - g) * sat
        con = float(torch.empty(()).uniform_(0.7, 1.3)); bri = float(torch.empty(()).uniform_(-0.1, 0.1))
        x = (x - x.mean()) * con + x.mean() + bri
        out.append(x.clamp(0, 1))
    return torch.stack(out)

from cnnrnn.stylize.network import ConvLayer
def with_noise(net):
    if a.noise:
        c1 = S["model"]["channels"][0]
        net.down[0] = ConvLayer(3 + a.noise, c1, 9)
    return net
def net_out(net, x):
    if a.noise:
        g = torch.Generator().manual_seed(0) if not net.training else None
        noise = torch.rand(x.shape[0], a.noise, *x.shape[-2:], generator=g) - 0.5
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        noise = F.pad(noise, (0, pw, 0, ph), mode="reflect") if ph or pw else noise
        change = net.up(net.residual(net.down(torch.cat([xp - 0.5, noise], 1))))
        return torch.sigmoid(torch.logit(xp.clamp(1 / 512, 1 - 1 / 512)) + change)[..., :h, :w]
    if a.output == "logit":
        return net(x)
    h, w = x.shape[-2:]
    change = net.up(net.residual(net.down(x - 0.5)))
    return (x + change).clamp(0, 1)

results = {}
for sname in a.styles:
    style = styles[sname].float().div(255)
    ref_sorted = style.reshape(3, -1).sort(dim=1).values
    DIRS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, -1, 0], [1, 1, -2], [1, 0, -1]], dtype=torch.float32)
    DIRS = DIRS / DIRS.norm(dim=1, keepdim=True)
    style_proj = torch.einsum("chw,dc->dhw", style, DIRS).flatten(1).sort(dim=1).values
    with torch.no_grad():
        if a.texture == "matched":
            sg, _ = levels(style[None])
        else:
            sg, _ = levels(style[None])
    net = with_noise(build_style_network(S["model"]))
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.1)
    t0 = time.perf_counter()
    for step in range(a.steps):
        crops = torch.stack([random_crop(train_images[int(torch.randint(len(train_images), ()))], 192, (0.8, 1.25)) for _ in range(4)])
        crops = augment(crops)
        with torch.no_grad():
            cm = hist_match(crops, ref_sorted) if a.texture == "matched" else crops
            cg, cf = levels(cm if a.texture == "matched" else crops)
            _, cf = levels(crops)
            cd = level_distances(cg, [t.expand_as(g) for t, g in zip(sg, cg)])
        y = net_out(net, crops)
        if a.texture == "matched":
            ym = y + (hist_match(y.detach(), ref_sorted) - y.detach())  # straight-through histogram matching
            grams, _ = levels(ym)
            _, feats = levels(y)
        else:
            grams, feats = levels(y)
        content = F.mse_loss(feats, cf) / cf.pow(2).mean().clamp_min(1e-12)
        dist = level_distances(grams, [t.expand_as(g) for t, g in zip(sg, grams)])
        sl = (dist.sum(1) / cd.sum(1).clamp_min(1e-12)).mean()
        if a.colour == "sliced":
            proj = torch.einsum("bchw,dc->bdhw", y, DIRS).flatten(2).sort(dim=2).values
            n = proj.shape[2]
            idx = torch.linspace(0, style_proj.shape[1] - 1, n).round().long()
            colour = (proj - style_proj[:, idx][None]).pow(2).mean()
        else:
            colour = F.mse_loss(y, hist_match(y.detach(), ref_sorted)) if a.colour_weight else torch.zeros(())
        loss = a.content_weight * content + a.style_weight * sl + a.tv * total_variation(y).mean() + a.colour_weight * colour
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if step % 50 == 0 or step == a.steps - 1:
            print(f"{sname} step {step} loss {loss.item():.3f} style {sl.item():.3f} content {content.item():.3f} colour {colour.item():.4f} {time.perf_counter()-t0:.0f}s", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    net.eval()
    evalnet = evaluation_network(S["evaluate"]["feature_network"])
    rows = {}
    outs = {}
    with torch.no_grad():
        for vname, img in val.items():
            x = img.float().div(255)
            y = net_out(net, x[None])[0]
            outs[vname] = y
            rows[vname] = dict(ratio=round(style_loss_ratio(evalnet, y, x, style, 256), 4), ssim=round(content_ssim(y, x), 4), colour=round(color_distance(y, style), 4))
    results[sname] = dict(seconds=round(secs, 1), **rows)
    torch.save({"state": net.state_dict(), "outs": outs}, Path("/tmp/exp").joinpath(f"{a.tag}_{sname}.pt"))
    print(sname, json.dumps(results[sname]), flush=True)
ratios = [r["ratio"] for s in results.values() for k, r in s.items() if k != "seconds"]
print(json.dumps({"tag": a.tag, "args": vars(a), "mean_val_ratio": round(sum(ratios) / len(ratios), 4), "results": results}))
Path("/tmp/exp").mkdir(parents=True, exist_ok=True)
with open("/tmp/exp/results.jsonl", "a") as f:
    f.write(json.dumps({"tag": a.tag, "args": vars(a), "mean_val_ratio": round(sum(ratios) / len(ratios), 4), "results": results}) + "\n")
