"""Independent plain-Python implementation of rrec-spec §A (plus r2ec's duplicate-review drop).

It shares no code with r2ec and is the source of the expected counts and sample digests in
tests/data/real_data_test.ts. Regenerate a row with, for example:

    python3 tests/data/oracle/preprocess_oracle.py ../shared/data/amazon2023-ucsd/Video_Games.jsonl \
        ../shared/data/amazon2023-ucsd/meta_Video_Games.jsonl 2022 10 2023 10 0 10000

Arguments: reviews meta start_year start_month end_year end_month K min_items. It prints the counts,
the window start actually used, and the first 16 hex digits of sha256 over
"user|target ms|history ids|target id\\n" for every sample in interaction order.
"""
import calendar
import datetime
import hashlib
import json
import sys


def python_float(x):
    if x is None or isinstance(x, (list, dict)):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def load_meta(path):
    kept, seen = [], set()
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        o = json.loads(line)
        is2018 = "parent_asin" not in o
        asin = o["asin"] if is2018 else o["parent_asin"]
        title = o.get("title")
        if title is None or "<span id" in title:
            continue
        title = title.replace("&quot;", '"').replace("&amp;", "&").strip(" ").strip('"')
        if len(title.split(" ")) > 20 or len(title) <= 1:
            continue
        price = o.get("price")
        if is2018 and isinstance(price, str):
            price = price.replace("$", "").replace(",", "")
        if python_float(price) is None or asin in seen:
            continue
        seen.add(asin)
        kept.append(asin)
    return kept


def load_reviews(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        o = json.loads(line)
        if "reviewerID" in o:
            rows.append((o["reviewerID"], o["asin"], o["unixReviewTime"] * 1000))
        else:
            rows.append((o["user_id"], o["parent_asin"], o["timestamp"]))
    return rows


def month_ms(year, month):
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)


def main(reviews, meta, sy, sm, ey, em, k, min_items, window=20):
    items = load_meta(meta)
    kept = set(items)
    rows, seen = [], set()
    for r in load_reviews(reviews):
        if r[1] in kept and r not in seen:  # (user, item, time) repeats are dropped
            seen.add(r)
            rows.append(r)
    start, end = month_ms(sy, sm), month_ms(ey, em)
    min_year = utc(min(r[2] for r in rows)).year
    while True:
        cur = [r for r in rows if start <= r[2] <= end]
        while k > 1:
            per_user, per_item = {}, {}
            for r in cur:
                per_user[r[0]] = per_user.get(r[0], 0) + 1
                per_item[r[1]] = per_item.get(r[1], 0) + 1
            survivors = [r for r in cur if per_user[r[0]] >= k and per_item[r[1]] >= k]
            if len(survivors) == len(cur):
                break
            cur = survivors
        if len({r[1] for r in cur}) < min_items and utc(start).year > min_year:
            months = utc(start).year * 12 + utc(start).month - 1 - 3
            start = month_ms(months // 12, months % 12 + 1)
            continue
        break
    present = {r[1] for r in cur}
    ids = {}
    for asin in items:
        if asin in present:
            ids[asin] = len(ids) + 1
    by_user = {}
    for r in cur:
        by_user.setdefault(r[0], []).append(r)
    samples = []
    for user, seq in by_user.items():
        seq = sorted(seq, key=lambda r: r[2])
        for i in range(1, len(seq)):
            history = [ids[h[1]] for h in seq[max(i - window, 0):i]]
            samples.append((seq[i][2], user, history, ids[seq[i][1]]))
    samples.sort(key=lambda s: s[0])
    n = len(samples)
    text = "".join(f"{u}|{t}|{','.join(map(str, h))}|{i}\n" for t, u, h, i in samples)
    print(json.dumps({
        "users": len(by_user), "items": len(ids), "reviews": len(cur), "samples": n,
        "train": int(0.8 * n), "valid": int(0.9 * n) - int(0.8 * n), "test": n - int(0.9 * n),
        "start": utc(start).strftime("%Y-%m-%d"), "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
    }))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], *map(int, a[2:8]))
