"""The table and target/bench.json of scripts/bench.sh, with each target checked."""

import json
import os
import platform
import time

MiB = 1024 * 1024


def counts(c):
    if not c:
        return ""
    parts = [f"api {c['api']}"]
    for key in ("get", "head"):
        if c.get(key):
            parts.append(f"{key} {c[key]}")
    if c.get("upload"):
        parts[0] = f"api {c['api']} (up {c['upload']})"
    return " ".join(parts)


def requests_of(side):
    return (side or {}).get("requests") or {}


def secs(side):
    if not side:
        return ""
    text = f"{side['seconds']:.3f}s" if side["seconds"] < 10 else f"{side['seconds']:.1f}s"
    if "mib_s" in side:
        text += f" {side['mib_s']:.0f} MiB/s"
    return text


def judge(row):
    """(ratio, target text, met) for a row; met is None when there is nothing to judge."""
    m, c, case, env = row.get("mount"), row.get("curl"), row["case"], row["env"]
    if case == "0" or m is None:
        return None, "", None
    ratio = m["seconds"] / c["seconds"] if c and c["seconds"] > 0 else None
    mr, cr = requests_of(m), requests_of(c)
    rss = m.get("rss_peak_kib")
    if case == "1":
        speed = c["seconds"] / m["seconds"]
        want = 2.0 if env == "distant" else 0.7
        ok = speed >= want and (rss is None or rss < 64 * 1024)
        return speed, f"speed >= {want}x curl, RSS < 64 MiB", ok
    if case == "2":
        return ratio, "time <= 1.5x curl", ratio <= 1.5
    if case == "3a":
        pages = row.get("pages")
        ok = ratio <= 1.2 and mr.get("api") == pages and not mr.get("get") and not mr.get("head")
        return ratio, f"<= 1.2x, exactly {pages} requests", ok
    if case == "3b":
        return ratio, "<= 1.2x curl", ratio <= 1.2
    if case == "3c":
        return ratio, "no HEADs", not mr.get("head")
    if case == "3d":
        cold = row.get("cold_seconds") or 0
        share = m["seconds"] / cold if cold else None
        ok = share is not None and share < 0.05 and not any(mr.get(k) for k in ("api", "get", "head"))
        return share, "< 5% of cold, no requests", ok
    if case == "4":
        return ratio, "<= 1.3x curl", ratio <= 1.3
    if case == "5":
        return ratio, "<= 1.0x curl", ratio <= 1.0
    if case in ("6a", "6b"):
        ok = mr.get("list", 0) <= cr.get("list", 0) and not mr.get("head") and not mr.get("get")
        return ratio, "1 listing/folder, no per-file requests", ok
    if case == "7":
        return None, "RSS < 150 MiB", rss is not None and rss < 150 * 1024
    return ratio, "", None


HEADER = ("env", "case", "what", "mount", "curl", "ratio", "mount requests", "curl requests",
          "peak RSS", "target", "met")


def cells(row):
    ratio, target, met = judge(row)
    m = row.get("mount")
    rss = (m or {}).get("rss_peak_kib")
    return (
        row["env"], row["case"], row["name"], secs(m) or row.get("note", ""), secs(row.get("curl")),
        "" if ratio is None else f"{ratio:.2f}",
        counts(requests_of(m)), counts(requests_of(row.get("curl"))),
        "" if rss is None else f"{rss / 1024:.0f} MiB",
        target, {True: "yes", False: "NO", None: ""}[met],
    )


def print_row(row):
    c = cells(row)
    print("    " + " | ".join(x for x in c[3:] if x), flush=True)


def table(rows):
    lines = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(x.ljust(w) for x, w in zip(line, widths)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def finish(rows, json_path, command):
    print()
    print(f"Results of `{command}`:")
    print(table([r for r in rows if r["case"] != "0"]))
    for r in rows:
        if r["case"] == "0":
            print(f"server check: curl downloads the big file at {r['curl']['mib_s']:.0f} MiB/s")
    for r in rows:
        ratio, target, met = judge(r)
        r["ratio"] = None if ratio is None else round(ratio, 3)
        r["target"] = target
        r["met"] = met
    doc = {
        "command": command,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "results": rows,
    }
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"written to {json_path}")
