#!/usr/bin/env python3
"""Generate the embedded demo corpus shipped with spacy_bert_cls.

Every text in this corpus is produced by the templates and word lists below,
which were written for this project; nothing is taken from a third-party data
set. The output is deterministic (fixed seeds, standard library only).

Run from the repository root:

    python corpus/make_demo.py

It (re)writes:

    corpus/textcat/{train,dev}.jsonl             positive / negative reviews
    corpus/textcat_multilabel/{train,dev}.jsonl  support tickets, 0-3 labels
    corpus/ner/{train,dev}.conll                 PERSON / ORG / LOC / PRODUCT
    corpus/raw/pretrain.txt                      plain text for masked-LM demos

and prints a summary with a few sanity checks. It exits non-zero if a check
fails.
"""
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 1337
HERE = Path(__file__).resolve().parent

SLOT_RE = re.compile(r"\{(\w+)\}")


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def fill(template, rng, lists, fixed=None):
    """Replace {slot} markers with words drawn from `lists`.

    The same slot name gets the same value within one call; slots that only
    differ by a trailing digit (padj, padj2) get different values where the
    list allows it. A list entry may also be a function of the rng.
    """
    values = dict(fixed or {})
    used = {}

    def repl(match):
        key = match.group(1)
        if key in values:
            return values[key]
        base = key.rstrip("0123456789")
        options = lists[base]
        value = None
        for _ in range(30):
            value = options(rng) if callable(options) else rng.choice(options)
            if value not in used.get(base, ()):
                break
        used.setdefault(base, []).append(value)
        values[key] = value
        return value

    return SLOT_RE.sub(repl, template)


def article(noun):
    return "an" if noun[:1].lower() in "aeiou" else "a"


def capitalise(text):
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


LOWERABLE_FIRST = {
    "the", "a", "an", "it", "its", "my", "this", "that", "there", "most",
    "some", "many", "every", "nobody", "good", "leftover", "children",
    "when", "if", "after", "before", "on", "in", "by", "old", "strong",
    "local", "rain", "young", "fans", "training", "farmers", "temperatures",
    "forecasters", "prices", "travelling", "wash", "start", "leave",
    "compared", "software", "setting", "reviewers", "since", "please",
    "can", "how", "why", "what", "is", "do", "you", "only", "someone",
    "notifications", "images", "our", "your", "just", "one", "two",
    "could", "where", "will", "does", "are", "who", "great", "dark",
    "half", "there's", "any", "several", "every", "usually",
}


def lower_first(text):
    """Lower-case the first letter if the first word is an ordinary word."""
    first = re.split(r"[\s,]", text, maxsplit=1)[0].lower()
    if first in LOWERABLE_FIRST:
        return text[0].lower() + text[1:]
    return text


def tidy(text):
    text = re.sub(r" +", " ", text).strip()
    text = re.sub(r" ([,.!?;:])", r"\1", text)
    return text


def norm_key(text):
    """A duplicate key that ignores case, punctuation and emoji."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    for line in lines:
        if line != line.rstrip() or "\r" in line:
            raise ValueError(f"trailing space or CR in {path}: {line!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def split_balanced(items, n_dev, rng):
    items = list(items)
    rng.shuffle(items)
    return items[n_dev:], items[:n_dev]


# ---------------------------------------------------------------------------
# 1. Binary text classification: product / service reviews
# ---------------------------------------------------------------------------

ITEMS = [
    "blender", "kettle", "pair of headphones", "desk lamp", "phone case",
    "rice cooker", "backpack", "electric toothbrush", "yoga mat",
    "coffee maker", "smartwatch", "vacuum cleaner", "office chair",
    "water bottle", "Bluetooth speaker", "air fryer", "keyboard",
    "pair of hiking boots", "winter jacket", "toaster", "standing desk",
    "camping tent", "hair dryer", "frying pan", "mattress", "laptop stand",
    "wireless mouse", "sofa", "garden hose", "e-reader", "kids' bike",
    "suitcase", "baby monitor", "sewing machine", "pressure cooker",
]
FOOD_PLACES = ["restaurant", "café", "bakery", "pizza place", "noodle bar", "crêperie"]
PLACES = ["hotel", "gym", "hair salon", "bike shop", "bookshop", "repair shop", "garden centre", "cinema"]
SERVICES = [
    "delivery service", "customer support team", "cleaning service",
    "taxi company", "internet provider", "moving company",
    "car rental company", "dog groomer", "plumbing company", "résumé service",
]

TARGETS = (
    [(x, {"A", "I"}) for x in ITEMS]
    + [(x, {"A", "S", "P", "F"}) for x in FOOD_PLACES]
    + [(x, {"A", "S", "P"}) for x in PLACES]
    + [(x, {"A", "S", "V"}) for x in SERVICES]
)

REVIEW_WORDS = {
    "padj": [
        "great", "excellent", "fantastic", "wonderful", "superb", "brilliant",
        "lovely", "impressive", "reliable", "outstanding", "perfect",
        "top-notch", "amazing", "solid", "delightful", "first-rate",
    ],
    "nadj": [
        "terrible", "awful", "disappointing", "useless", "poor", "dreadful",
        "horrible", "mediocre", "overpriced", "unreliable", "shoddy",
        "frustrating", "appalling", "pathetic", "second-rate",
    ],
    "padv": [
        "perfectly", "flawlessly", "brilliantly", "beautifully", "like a dream",
        "exactly as described", "smoothly", "quietly and reliably",
    ],
    "pbuild": ["sturdy", "solid", "well made", "premium", "really well put together"],
    "nbuild": ["flimsy", "cheap", "wobbly", "fragile", "badly made"],
    "plook": ["great", "stylish", "beautiful", "smart", "even better than in the photos"],
    "nlook": ["cheap", "ugly", "tacky", "nothing like the photos"],
    "pstaff": ["friendly", "helpful", "kind", "welcoming", "attentive", "so patient with us"],
    "nstaff": ["rude", "unhelpful", "dismissive", "clueless", "painfully slow", "incredibly rude"],
    "plove": ["love", "absolutely love", "really like", "am so happy with", "adore", "am delighted with"],
    "nhate": ["hate", "am so disappointed with", "really dislike", "can't stand", "regret choosing"],
    "pclose": ["Highly recommend", "Would recommend to anyone", "Strongly recommend", "Can't recommend it enough"],
    "nclose": ["Avoid at all costs", "Save your money", "Stay away", "Do not bother"],
    "ago": ["last week", "a month ago", "in March", "last year", "two weeks ago", "over the summer", "before Christmas"],
    "dur": ["six months", "a year", "two years", "three weeks", "a few months", "almost a year"],
    "short": ["two days", "a week", "three uses", "a fortnight", "one afternoon", "ten days"],
    "quick": ["ten minutes", "one phone call", "under an hour", "a single visit", "no time at all"],
    "wait": ["forty minutes", "an hour", "two hours", "half the afternoon", "ages"],
    "rel": ["wife", "husband", "son", "daughter", "partner", "mum", "dad", "flatmate", "grandmother"],
    "nbreak": ["broke", "fell apart", "cracked", "stopped charging", "started leaking", "died"],
    "mid": [".", ".", "!"],
}

# (kind, template). Kinds: A any, I item, S any business, P place, F food place, V service.
POS_PLAIN = [
    ("A", "The {x} is {padj}{end}"),
    ("A", "Really {padj} {x}{end}"),
    ("A", "I {plove} this {x}{end}"),
    ("A", "Five stars for the {x}{end}"),
    ("A", "Best {x} I have ever had{end}"),
    ("A", "This {x} exceeded my expectations{end}"),
    ("A", "{pclose}, the {x} is {padj}{end}"),
    ("A", "So glad I chose this {x}{end}"),
    ("A", "The {x} was {padj} and {padj2}{end}"),
    ("A", "Ten out of ten for the {x}{end}"),
    ("A", "Worth every penny{mid} The {x} is {padj}{end}"),
    ("A", "What {a_padj} {x}{end}"),
    ("A", "Honestly, the {x} is {padj} and I'd choose it again{end}"),
    ("I", "The {x} works {padv} and feels {pbuild}{end}"),
    ("I", "Bought the {x} {ago} and it still works like new{end}"),
    ("I", "The {x} does exactly what it says on the box{end}"),
    ("I", "Setup took two minutes and the {x} has been {padj} ever since{end}"),
    ("I", "My {rel} loves the {x} and uses it every day{end}"),
    ("I", "Solid build, easy to use, and the {x} looks {plook}{end}"),
    ("I", "Great value for money, this {x} is a bargain{end}"),
    ("I", "I've had the {x} for {dur} now and it's still {padj}{end}"),
    ("I", "Arrived early, well packed, and the {x} works {padv}{end}"),
    ("I", "Would happily buy this {x} again{end}"),
    ("P", "The staff at the {x} were {pstaff}{end}"),
    ("P", "We will definitely be back at this {x}{end}"),
    ("P", "Lovely atmosphere at the {x}, and the prices are fair{end}"),
    ("F", "The food at this {x} is {padj} and the portions are generous{end}"),
    ("F", "Had the crème brûlée at the {x} and it was {padj}{end}"),
    ("S", "The {x} was quick, friendly and {padj}{end}"),
    ("S", "Used the {x} {ago}, {padj} experience from start to finish{end}"),
    ("S", "The {x} sorted everything out in {quick}{end}"),
    ("S", "Couldn't ask for a better {x}{end}"),
    ("V", "The {x} turned up on time and did {a_padj} job{end}"),
]

NEG_PLAIN = [
    ("A", "The {x} is {nadj}{end}"),
    ("A", "Really {nadj} {x}{end}"),
    ("A", "I {nhate} this {x}{end}"),
    ("A", "One star for the {x}, and that is generous{end}"),
    ("A", "Worst {x} I have ever had{end}"),
    ("A", "This {x} was a huge letdown{end}"),
    ("A", "{nclose}, the {x} is {nadj}{end}"),
    ("A", "Total waste of money{mid} The {x} is {nadj}{end}"),
    ("A", "I want a refund for this {x}{end}"),
    ("A", "Never again{mid} The {x} was {nadj}{end}"),
    ("A", "The {x} was {nadj} and {nadj2}{end}"),
    ("A", "Zero out of ten for the {x}{end}"),
    ("A", "What {a_nadj} {x}{end}"),
    ("I", "The {x} stopped working after {short}{end}"),
    ("I", "Cheap plastic, and the {x} {nbreak} within {short}{end}"),
    ("I", "The {x} feels {nbuild} and makes a horrible noise{end}"),
    ("I", "The {x} arrived damaged and with parts missing{end}"),
    ("I", "Returned the {x} {ago} and I'm still waiting for my money{end}"),
    ("I", "My {rel} tried the {x} once and gave up on it{end}"),
    ("I", "The {x} looks {nlook} and overheats constantly{end}"),
    ("I", "Overpriced junk, this {x} is a rip-off{end}"),
    ("I", "Sent the {x} back after {short}{end}"),
    ("P", "The staff at the {x} were {nstaff}{end}"),
    ("P", "The {x} was dirty and the prices were ridiculous{end}"),
    ("P", "We waited {wait} to be served at the {x}{end}"),
    ("F", "The food at this {x} was cold and the portions were tiny{end}"),
    ("F", "Ordered the crème brûlée at the {x} and it was {nadj}{end}"),
    ("S", "The {x} was slow, rude and {nadj}{end}"),
    ("S", "Used the {x} {ago}, {nadj} experience from start to finish{end}"),
    ("S", "Deeply regret choosing this {x}{end}"),
    ("V", "Spent {wait} on hold with the {x} and nobody helped{end}"),
    ("V", "The {x} cancelled on me twice without any notice{end}"),
]

# Negated negative cues that mean "positive", and the reverse.
POS_NEGATION = [
    ("A", "Not bad at all{mid} The {x} is {padj}{end}"),
    ("A", "The {x} is not bad at all{end}"),
    ("A", "No complaints about the {x} whatsoever{end}"),
    ("A", "I can't fault the {x}{end}"),
    ("A", "Never had a single problem with the {x}{end}"),
    ("A", "The {x} did not disappoint{end}"),
    ("A", "I was worried the {x} would be {nadj}, but it is {padj}{end}"),
    ("A", "The reviews said the {x} was {nadj}; they were wrong{end}"),
    ("A", "I couldn't be happier with the {x}{end}"),
    ("A", "Nothing to complain about, the {x} is {padj}{end}"),
    ("A", "Don't listen to the haters, the {x} is {padj}{end}"),
    ("A", "I didn't expect much from the {x}, but it won me over{end}"),
    ("A", "Not once has the {x} let me down{end}"),
    ("I", "Call me naïve, but I expected the {x} to break quickly and it hasn't{end}"),
    ("I", "Not a single scratch on the {x} after {dur}{end}"),
    ("S", "Never a bad word to say about this {x}{end}"),
    ("S", "No fuss, no delays, no problems with the {x}{end}"),
]

NEG_NEGATION = [
    ("A", "The {x} is not worth it{end}"),
    ("A", "Not worth it{mid} The {x} is {nadj}{end}"),
    ("A", "Not what I expected from {a_x}{end}"),
    ("A", "Would not recommend the {x} to anyone{end}"),
    ("A", "Not impressed with the {x} at all{end}"),
    ("A", "Nothing special, and definitely not worth the price{end}"),
    ("A", "I really wanted to love the {x}, but it's {nadj}{end}"),
    ("A", "Not great, not even good, the {x} is {nadj}{end}"),
    ("A", "I was naïve to trust the five-star reviews of this {x}{end}"),
    ("A", "I wouldn't give the {x} a second chance{end}"),
    ("A", "Great? No. The {x} is barely usable{end}"),
    ("A", "The {x} is not {padj}, whatever the adverts say{end}"),
    ("I", "The {x} doesn't work half the time{end}"),
    ("I", "The {x} never worked properly, not even on day one{end}"),
    ("V", "The {x} didn't show up and didn't even call{end}"),
    ("P", "Nobody at the {x} seemed to care{end}"),
]

# A cue of the other class is present, but the review is clear overall.
POS_CONTRAST = [
    ("I", "The box was a bit dented, but the {x} itself is {padj}{end}"),
    ("A", "A little pricey, but the {x} is worth it{end}"),
    ("I", "Delivery was slow, but the {x} was worth the wait{end}"),
    ("A", "At first I thought the {x} was {nadj}, now I recommend it to everyone{end}"),
    ("A", "My last {x} was {nadj}, this one is {padj}{end}"),
    ("P", "The street outside is noisy, but the {x} itself is {padj}{end}"),
    ("V", "They were ten minutes late, but the {x} did {a_padj} job{end}"),
]

NEG_CONTRAST = [
    ("I", "The packaging was lovely, but the {x} {nbreak} after {short}{end}"),
    ("P", "Friendly staff, but the {x} was {nadj}{end}"),
    ("A", "Looks great, but the {x} is useless{end}"),
    ("I", "The first week was fine, then the {x} {nbreak}{end}"),
    ("A", "My last {x} was {padj}, this one is {nadj}{end}"),
    ("F", "Beautiful room, shame about the food at this {x}{end}"),
    ("V", "Polite on the phone, but the {x} made a mess of everything{end}"),
]

POS_DETAILS = [
    ("I", "Delivery was quick."), ("I", "The instructions were clear and short."),
    ("I", "It is quiet and easy to clean."), ("I", "The battery lasts for days."),
    ("I", "It feels sturdy and well made."), ("I", "The colour is exactly as pictured."),
    ("I", "Even my grandmother figured it out in minutes."),
    ("I", "It replaced two other gadgets in our house."),
    ("I", "The price was fair for the quality."),
    ("I", "It survived a fall down the stairs without a mark."),
    ("P", "The staff remembered our names."), ("P", "Everything was spotless."),
    ("P", "Prices are fair and clearly listed."),
    ("P", "The owner clearly cares about the details."),
    ("F", "The crème brûlée was perfect."), ("F", "The coffee was rich and hot."),
    ("F", "The jalapeño bread is worth the trip on its own."),
    ("V", "They arrived exactly on time."),
    ("V", "They even called the next day to check everything was fine."),
    ("V", "Booking online took less than a minute."),
    ("V", "The final bill matched the quote to the penny."),
]

NEG_DETAILS = [
    ("I", "Delivery took three weeks."), ("I", "The instructions made no sense."),
    ("I", "It is loud and hard to clean."), ("I", "The battery dies by lunchtime."),
    ("I", "It wobbles on any surface."), ("I", "The colour looks nothing like the photos."),
    ("I", "One of the buttons fell off on day two."),
    ("I", "It smells of burnt plastic."),
    ("I", "Customer service never replied to my emails."),
    ("P", "The place was filthy."), ("P", "Nobody greeted us."),
    ("P", "The music was so loud we could not talk."),
    ("P", "The whole place smelled of damp."),
    ("F", "The crème brûlée was burnt."), ("F", "The coffee was cold and bitter."),
    ("F", "The bill did not match the prices on the menu."),
    ("V", "They turned up two hours late."), ("V", "The invoice was double the quote."),
    ("V", "Nobody answered the phone."), ("V", "They left a mess behind."),
]

# Mild remarks of the other polarity inside an otherwise clear review.
POS_ASIDES = [
    ("A", "The only downside is the price."),
    ("I", "It's a bit loud, but I can live with that."),
    ("A", "Not perfect, but close."),
    ("P", "Parking is a nightmare, though."),
    ("V", "The website is clunky, but the people are great."),
]
NEG_ASIDES = [
    ("A", "The packaging was nice, I'll give them that."),
    ("I", "The design is pretty, sadly that's all."),
    ("P", "The location is great, which makes it even more annoying."),
    ("V", "The lady on the phone was lovely, to be fair."),
]

POS_CLOSINGS = [
    ("A", "Highly recommended."), ("I", "Would buy again."), ("A", "Five stars."),
    ("P", "We'll be back."), ("A", "Thanks!"), ("A", "Can't recommend it enough."),
    ("A", "Worth every penny."), ("A", "Very happy customer."), ("A", "5/5."),
    ("V", "Will use them again."),
]
NEG_CLOSINGS = [
    ("A", "Avoid."), ("A", "Save your money."), ("A", "Never again."),
    ("I", "Returning it tomorrow."), ("A", "One star."), ("A", "Very disappointed."),
    ("A", "I've asked for a refund."), ("A", "Not recommended."), ("A", "1/5."),
    ("S", "Won't be going back."),
]

POS_END = [".", ".", ".", "!", "!", "!!", "", "..."]
NEG_END = [".", ".", ".", "!", "!!!", "", "...", "."]
POS_EMOJI = ["😊", "👍", "❤️", "🙌", "😍", "⭐⭐⭐⭐⭐"]
NEG_EMOJI = ["😡", "👎", "🙁", "😤", "🤦", "⭐"]
SHOUT_WORDS = ["love", "best", "never", "worst", "not", "great", "terrible", "awful", "avoid", "refund", "so"]


def _fits(kind, kinds):
    return kind in kinds


def _review_fill(template, target, rng, end):
    fixed = {"x": target, "a_x": f"{article(target)} {target}", "end": end}
    # "{a_padj}" -> "a great" / "an excellent"
    for slot in ("padj", "nadj"):
        if "{a_" + slot + "}" in template:
            word = rng.choice(REVIEW_WORDS[slot])
            fixed["a_" + slot] = f"{article(word)} {word}"
    return fill(template, rng, REVIEW_WORDS, fixed)


def _pick_target(kind, rng):
    return rng.choice([name for name, kinds in TARGETS if _fits(kind, kinds)])


def _style(text, label, rng):
    text = capitalise(tidy(text))
    r = rng.random()
    if r < 0.07:
        text = text.lower()
    elif r < 0.12:
        for word in SHOUT_WORDS:
            m = re.search(rf"\b{word}\b", text, flags=re.IGNORECASE)
            if m:
                text = text[: m.start()] + m.group(0).upper() + text[m.end() :]
                break
    if rng.random() < 0.07:
        emoji = rng.choice(POS_EMOJI if label == "positive" else NEG_EMOJI)
        text = text + " " + emoji
    return text


def make_review(label, rng):
    pos = label == "positive"
    ends = POS_END if pos else NEG_END
    r = rng.random()
    if r < 0.74:
        if r < 0.48:
            pool = POS_PLAIN if pos else NEG_PLAIN
        elif r < 0.64:
            pool = POS_NEGATION if pos else NEG_NEGATION
        else:
            pool = POS_CONTRAST if pos else NEG_CONTRAST
        kind, template = rng.choice(pool)
        target = _pick_target(kind, rng)
        return _style(_review_fill(template, target, rng, rng.choice(ends)), label, rng)

    # A multi-sentence review: opener, details, maybe an aside, closing.
    target, kinds = rng.choice(TARGETS)
    openers = [(k, t) for k, t in (POS_PLAIN + POS_NEGATION if pos else NEG_PLAIN + NEG_NEGATION) if k in kinds]
    details = [d for k, d in (POS_DETAILS if pos else NEG_DETAILS) if k in kinds]
    asides = [d for k, d in (POS_ASIDES if pos else NEG_ASIDES) if k in kinds]
    closings = [d for k, d in (POS_CLOSINGS if pos else NEG_CLOSINGS) if k in kinds]
    _, template = rng.choice(openers)
    parts = [_review_fill(template, target, rng, rng.choice([".", ".", "!"]))]
    parts += rng.sample(details, rng.randint(1, min(3, len(details))))
    if asides and rng.random() < 0.35:
        parts.insert(rng.randint(1, len(parts)), rng.choice(asides))
    if rng.random() < 0.8:
        parts.append(rng.choice(closings))
    text = " ".join(capitalise(p) for p in parts)
    return _style(text, label, rng)


POS_LEXICON = {
    "great", "excellent", "fantastic", "wonderful", "superb", "brilliant", "lovely",
    "impressive", "reliable", "outstanding", "perfect", "amazing", "love",
    "recommend", "best", "happy", "friendly", "helpful", "worth", "good",
}
NEG_LEXICON = {
    "terrible", "awful", "disappointing", "useless", "poor", "dreadful", "horrible",
    "mediocre", "overpriced", "unreliable", "shoddy", "worst", "not", "never",
    "refund", "broke", "rude", "avoid", "bad", "waste", "no",
}


def keyword_rule(text):
    words = re.findall(r"[a-z']+", text.lower())
    score = sum(w in POS_LEXICON for w in words) - sum(w in NEG_LEXICON for w in words)
    return "positive" if score >= 0 else "negative"


def make_textcat(n_train=400, n_dev=100):
    rng = random.Random(SEED + 1)
    per_label = (n_train + n_dev) // 2
    seen = set()
    by_label = {"positive": [], "negative": []}
    for label in by_label:
        tries = 0
        while len(by_label[label]) < per_label:
            tries += 1
            if tries > 100000:
                raise RuntimeError(f"could not make enough unique {label} reviews")
            text = make_review(label, rng)
            key = norm_key(text)
            if key in seen or len(text.split()) > 60:
                continue
            seen.add(key)
            by_label[label].append({"text": text, "label": label})
    train, dev = [], []
    for label, records in by_label.items():
        tr, dv = split_balanced(records, n_dev // 2, rng)
        train += tr
        dev += dv
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev


# ---------------------------------------------------------------------------
# 2. Multi-label text classification: support tickets
# ---------------------------------------------------------------------------

TICKET_LABELS = ["billing", "shipping", "account", "bug"]

TICKET_WORDS = {
    "order": lambda rng: str(rng.randint(10000, 99999)),
    "price": lambda rng: rng.choice(["£", "$", "€"]) + rng.choice(["9.99", "12.50", "19.99", "24", "49", "7.45", "120"]),
    "month": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "the weekend"],
    "code": ["SPRING20", "WELCOME10", "FREESHIP", "LOYAL15", "SUMMER5"],
    "country": ["Canada", "Portugal", "Kenya", "Norway", "Chile", "Japan", "Ireland", "Mexico"],
    "city": ["Leeds", "Lyon", "Toronto", "Porto", "Nairobi", "Osaka", "Bristol", "Gdańsk"],
    "email": lambda rng: rng.choice(["maren", "t.ashgrove", "kofi.d", "ilse88", "priya.w", "bram"]) + "@example.com",
    "browser": ["Firefox", "Safari", "Chrome", "Edge"],
    "thing": ["blue backpack", "oak side table", "large tent", "steel water bottle", "linen shirt", "desk lamp"],
    "name": ["Maren", "Tobiah", "Ilse", "Kofi", "Rania", "Dario", "Anouk", "Priya", "Idris", "Zofia"],
    "device": ["my phone", "my tablet", "my laptop", "an older iPad", "my Android phone"],
}

TICKET_CLAUSES = {
    "billing": [
        "I was charged twice for order #{order}.",
        "My invoice for {month} shows the wrong amount.",
        "I still haven't received the refund for order #{order}.",
        "Why did my subscription go up to {price} this month?",
        "Can I get a receipt with my company's VAT number on it?",
        "My card was declined even though there is plenty of money on it.",
        "I'd like to switch from monthly to yearly billing.",
        "There's a charge of {price} on my statement that I don't recognise.",
        "The discount code {code} wasn't applied to my payment.",
        "Please cancel my plan so I'm not billed again next month.",
        "How do I update the card you charge each month?",
        "I paid by bank transfer on {day} but the invoice still says unpaid.",
        "You refunded {price} instead of the full amount.",
        "Could you send me a copy of last month's invoice?",
    ],
    "shipping": [
        "My parcel was supposed to arrive on {day} but it's still not here.",
        "The tracking number for order #{order} hasn't updated in a week.",
        "The courier left the package at the wrong address.",
        "Can you ship to {country}?",
        "The box arrived crushed and the {thing} inside is damaged.",
        "Only two of the three items in order #{order} were delivered.",
        "How long does express delivery to {city} take?",
        "I need to change the delivery address for order #{order} before it ships.",
        "The driver marked my order as delivered, but nothing came.",
        "Is there any way to speed up delivery? I need it by {day}.",
        "My order has been stuck in customs for ten days.",
        "I received someone else's order instead of mine.",
        "When will the {thing} I ordered actually be dispatched?",
    ],
    "account": [
        "I can't log in to my account even though my password is correct.",
        "Please change the email address on my account to {email}.",
        "How do I delete my account and all my data?",
        "I never received the password reset email.",
        "My account was locked after too many login attempts.",
        "I want to add a second user to our team account.",
        "Someone may have got into my account, I can see logins from {city}.",
        "The two-factor code never arrives on {device}.",
        "Can I merge my two accounts into one?",
        "I'd like to change the username on my profile.",
        "My profile still shows my old phone number.",
        "How do I turn off the marketing emails in my account settings?",
    ],
    "bug": [
        "The app crashes every time I open the settings page.",
        "The checkout page freezes after I press the pay button.",
        "I get an 'error 500' message when I try to upload a photo.",
        "The search bar returns nothing, even for items I know you sell.",
        "Dark mode switches itself off every time I restart the app.",
        "Images on the product pages don't load in {browser}.",
        "The export to PDF button does nothing.",
        "Every notification shows up twice on {device}.",
        "The page keeps jumping back to the top while I'm typing.",
        "The calendar widget shows the wrong month.",
        "The app on {device} goes blank after the latest update.",
        "Half of the page is cut off in {browser}.",
    ],
}

TICKET_COMBOS = {
    ("account", "bug"): [
        "The password reset link opens a blank page.",
        "Since the last update, the app logs me out of my account every few minutes.",
        "The login button doesn't respond when I tap it on {device}.",
    ],
    ("billing", "bug"): [
        "The payment form showed an error, but my card was charged anyway.",
        "The link to download my invoice is broken.",
    ],
    ("shipping", "bug"): [
        "The tracking page crashes when I enter order #{order}.",
        "Your website says my parcel will arrive in 1970.",
    ],
    ("billing", "shipping"): [
        "I paid for express delivery but order #{order} came by standard post, please refund the difference.",
        "I was charged for shipping twice on order #{order}.",
    ],
    ("billing", "account"): [
        "I was billed for an account I closed in {month}.",
        "I can't see my invoices since I changed my account email.",
    ],
    ("shipping", "account"): [
        "I can't change the saved delivery address in my account.",
    ],
}

TICKET_NONE = [
    "Just wanted to say thank you, your team has been great.",
    "Do you have a shop in {city}?",
    "What are your opening hours over the holidays?",
    "Are you hiring at the moment? I'd love to work with you.",
    "Is the {thing} available in green?",
    "What material is the {thing} made of?",
    "Some feedback: the new website looks lovely.",
    "Do you offer gift wrapping?",
    "Who should I talk to about a partnership?",
    "Will the {thing} be back in stock soon?",
    "Is your newsletter still going? I haven't seen one in a while.",
    "Great product, my kids love it.",
    "Can you recommend a size for someone who is 180 cm tall?",
    "How do I care for the {thing} so that it lasts?",
    "Do you have any events planned in {city} this year?",
]

GREETINGS = ["Hi,", "Hello,", "Hi there,", "Hey team,", "Good morning,", "Dear support,", "", "", ""]
CONNECTORS = ["Also,", "On top of that,", "And", "Separately,", "Oh, and", "Another thing:", ""]
TICKET_CLOSINGS = ["Thanks.", "Please help.", "Thanks in advance!", "Cheers, {name}", "Regards, {name}", "", "", "Thank you!", "This is urgent."]


def make_ticket(rng):
    n_labels = rng.choices([0, 1, 2, 3], weights=[12, 48, 29, 11])[0]
    labels = sorted(rng.sample(TICKET_LABELS, n_labels), key=TICKET_LABELS.index)
    if not labels:
        clauses = [rng.choice(TICKET_NONE)]
        if rng.random() < 0.3:
            clauses.append(rng.choice([c for c in TICKET_NONE if c != clauses[0]]))
    else:
        remaining = list(labels)
        clauses = []
        combos = [pair for pair in TICKET_COMBOS if set(pair) <= set(labels)]
        if combos and rng.random() < 0.45:
            pair = rng.choice(combos)
            clauses.append(rng.choice(TICKET_COMBOS[pair]))
            for label in pair:
                remaining.remove(label)
        clauses += [rng.choice(TICKET_CLAUSES[label]) for label in remaining]
        rng.shuffle(clauses)
    clauses = [fill(c, rng, TICKET_WORDS) for c in clauses]
    parts = [clauses[0]]
    for clause in clauses[1:]:
        connector = rng.choice(CONNECTORS)
        parts.append(f"{connector} {lower_first(clause)}" if connector else clause)
    greeting = rng.choice(GREETINGS)
    closing = fill(rng.choice(TICKET_CLOSINGS), rng, TICKET_WORDS)
    text = tidy(" ".join([greeting] + parts + [closing]))
    if greeting:
        # "Hi, the app crashes" rather than "Hi, The app crashes"
        text = greeting + " " + lower_first(text[len(greeting) + 1 :])
    if rng.random() < 0.08:
        text = text.lower()
    return {"text": text, "labels": labels}


def make_multilabel(n_train=300, n_dev=80):
    rng = random.Random(SEED + 2)
    seen = set()
    records = []
    while len(records) < n_train + n_dev:
        record = make_ticket(rng)
        key = norm_key(record["text"])
        if key in seen:
            continue
        seen.add(key)
        records.append(record)
    rng.shuffle(records)
    return records[:n_train], records[n_train:]


# ---------------------------------------------------------------------------
# 3. NER: news and social posts in CoNLL (token TAB IOB2-tag)
# ---------------------------------------------------------------------------

NER_TYPES = ["PERSON", "ORG", "LOC", "PRODUCT"]

FIRST_NAMES = [
    "Maren", "Tobiah", "Ilse", "Kofi", "Rania", "Dario", "Anouk", "Bexley",
    "Corin", "Yusra", "Emeric", "Tamsin", "Hollis", "Priya", "Nadia", "Osric",
    "Lenka", "Rafferty", "Mireille", "Tendai", "Inès", "Calder", "Wren",
    "Soren", "Hanne", "Idris", "Zofia", "Kenji", "Ayla", "Lucan", "Odalys",
    "Bram", "Selin", "Thandi", "Elio", "Marit", "Quentin", "Aurélie", "Nilo",
]
LAST_NAMES = [
    "Vellacott", "Ashgrove", "Brannock", "Castellan", "Dunmore", "Elswick",
    "Farrant", "Gorvane", "Halloran", "Ibsworth", "Jessop", "Kervella",
    "Lindqvist", "Marchetti", "Nwosu-Hale", "Okonjo", "Pellerin", "Quarrie",
    "Rowntree", "Sabatini", "Tarrow", "Underhill", "Varga", "Whitlock",
    "Yilmaz", "Zeller", "Abernathy", "Brisco", "Callow", "Devereux",
    "Fenwick", "Hartigan", "Okafor", "Strand", "Moreau-Lind", "Østergaard",
]
NAME_PARTICLES = ["van", "de", "al", "da"]
# Words that are both a given name and a place name.
AMBIGUOUS = ["Florence", "Sydney", "Georgia", "Austin", "Jordan", "Victoria", "Adelaide", "Madison", "Paris", "Chelsea"]

ORG_STEMS = [
    "Orvane", "Brightwell", "Lumenfield", "Halcyon", "Quillon", "Norvik",
    "Ambergate", "Solenne", "Crestmoor", "Tessaly", "Varrow", "Kelbridge",
    "Moravane", "Pinecrest", "Ostrand", "Zorvex", "Callisto", "Greywater",
]
ORG_SUFFIXES = [
    "Systems", "Labs", "Analytics", "Foods", "Group", "Motors", "Bank",
    "Telecom", "Energy", "Robotics", "Airways", "Media", "Health",
    "Logistics", "Capital", "Games",
]
ORG_FIXED = [
    "Tallis & Reed", "Northgate University", "the Lumenfield Trust",
    "Bellweather Insurance Company", "Kestrel Open Source Foundation",
    "Pemberly & Sons", "Arkwright Institute of Design",
]
CLUBS = [
    "Harbourside Rovers", "FC Norvik", "Greywater Athletic", "Eastholm United",
    "Pinecrest Wanderers", "Kelbridge City", "Ostrand Vikings", "Moravane Hawks",
]
PRODUCT_BRANDS = ["Zentrix", "Lumo", "Aeris", "Novapad", "Quasar", "Pixelle", "Vortan", "Helio", "Stratos", "Orbio", "Kynet"]
PRODUCT_MODELS = ["5 Pro", "Air", "X2", "Mini", "Ultra", "Max 3", "Go", "S", "Lite", "2", "One", "Fold", "Pro 12", "Buds", "Watch 4"]
LOCATIONS = [
    "Lisbon", "Nairobi", "Oslo", "Montreal", "Jakarta", "Lagos", "Peru",
    "Iceland", "Berlin", "Kyoto", "Chile", "Vienna", "Denver", "Manchester",
    "Casablanca", "Hanoi", "Perth", "Dublin", "Accra", "Tbilisi", "Portugal",
    "Canada", "Kenya", "Norway", "Vietnam", "Morocco", "Québec", "Zürich",
    "New Zealand", "Buenos Aires", "Cape Town", "Kuala Lumpur", "Rio de Janeiro",
    "South Korea", "San Francisco", "Hong Kong", "Costa Rica", "Sri Lanka",
    "New York", "the Netherlands", "the Alps", "Lake Geneva",
]

NER_FILLERS = {
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "month": ["January", "March", "April", "June", "September", "November"],
    "year": ["2015", "2016", "2017", "2018", "2019", "2020", "2021"],
    "num": ["two", "three", "four", "five", "six", "nine", "12", "15", "20"],
    "mins": ["40", "50", "90", "forty", "ninety"],
    "pct": ["2", "3.5", "4", "7", "11", "15"],
    "jobs": ["120", "200", "350", "800", "1,200"],
    "score": ["1-0", "2-0", "2-1", "3-1", "3-2", "4-2"],
    "dist": ["5-kilometre", "10-kilometre", "half-marathon", "20-kilometre"],
    "food": ["banana bread", "lentil soup", "pancakes", "fried rice", "carrot cake", "flatbread"],
    "thing": ["rent", "bread", "petrol", "train tickets", "coffee", "electricity"],
    "rel": ["sister", "brother", "dad", "mum", "flatmate", "neighbour", "grandad"],
    "role": ["chief technology officer", "head of design", "finance director", "chief executive", "head of research"],
    "gadget": ["smartwatch", "tablet", "phone", "laptop", "e-reader", "pair of earbuds"],
    "adj": ["amazing", "great", "brilliant", "lovely", "unreal", "so good"],
}

# Pre-tokenised: tokens separated by single spaces. Upper-case slots are
# entities; lower-case slots are plain words (tag O).
NER_TEMPLATES = [
    "{PER} joined {ORG} as {role} last month .",
    "{ORG} said on {day} it would open a new office in {LOC} .",
    "The {PRODUCT} goes on sale in {LOC} next week , {ORG} confirmed .",
    "{PER} , a spokesperson for {ORG} , declined to comment .",
    "Just got my hands on the new {PRODUCT} and it is {adj}",
    "Shoutout to {PER} for the great talk in {LOC} today !",
    "{LOC} will host the final between {CLUB} and {CLUB2} in {month} .",
    "{PER} scored twice as {CLUB} beat {CLUB2} {score} in {LOC} .",
    "According to {PER} , the {PRODUCT} sold out within hours .",
    "{ORG} has recalled thousands of {PRODUCT} units after reports of overheating .",
    "Flying from {LOC} to {LOC2} tomorrow , wish me luck",
    "Met {PER} at the {ORG} stand , what a lovely person",
    "{PER} 's review of the {PRODUCT} went viral on {day} .",
    "{ORG} 's shares rose {pct} % after the launch of the {PRODUCT} .",
    "Is the {PRODUCT} worth it or should I wait for the next one ?",
    "The weather in {LOC} is ridiculous today",
    "{PER} and {PER2} co-founded {ORG} in {year} .",
    "The mayor of {LOC} , {PER} , opened the festival on {day} .",
    "{ORG} is moving its headquarters from {LOC} to {LOC2} .",
    "Anyone else having trouble with the {PRODUCT} battery ?",
    "Huge thanks to everyone at {ORG}",
    "Congratulations to {PER}",
    "New blog post : my week in {LOC}",
    "{PRODUCT} or {PRODUCT2} ? Help me decide",
    "{PER} told reporters in {LOC} that the deal with {ORG} was close .",
    "Police in {LOC} said a man had been arrested after the incident .",
    "{ORG} appointed {PER} as its new {role} on {day} .",
    "The {ORG} team unveiled the {PRODUCT} at an event in {LOC} .",
    "Tickets for {PER} 's show in {LOC} sold out in minutes .",
    "{PER} , who grew up in {LOC} , now runs a small bakery .",
    "My {rel} just bought a {PRODUCT} and will not stop talking about it",
    "{LOC} is beautiful this time of year",
    "Back home in {LOC} after a long trip",
    "Talks between {ORG} and {ORG2} broke down on {day} , sources said .",
    "{PER} won the {LOC} marathon in a record time .",
    "The long-awaited {PRODUCT} finally ships to customers in {LOC} on {day} .",
    "{ORG} launched the {PRODUCT} , its first {gadget} .",
    "Analysts at {ORG} expect demand for the {PRODUCT} to slow .",
    "{PER} left {ORG} after {num} years to start a new company .",
    "Greetings from {LOC} !",
    "Thank you {LOC} , you were amazing tonight !",
    "{PER} was named player of the match after {CLUB} 's win over {CLUB2} .",
    "My {PRODUCT} review is up , thanks to {ORG} for the sample",
    "Heavy rain caused flooding across parts of {LOC} on {day} .",
    "{ORG} will cut {jobs} jobs in {LOC} , the company said .",
    "Can confirm the camera on the {PRODUCT} is much better than the old one",
    "{PER} , {PER2} and {PER3} were shortlisted for the award .",
    "In {LOC} , {ORG} opened its largest store so far .",
    "The deal makes {ORG} the biggest employer in {LOC} .",
    "Spotted {PER} at the airport in {LOC} this morning",
    "Finally upgraded to the {PRODUCT}",
    "I miss {LOC} already",
    "{PER} 's well-known recipe for {food} is now a best-selling book .",
    "{PRODUCT} owners in {LOC} report that the update fixed the screen flicker .",
    "Great to see {PER} back on the pitch for {CLUB}",
    "{CLUB} have signed {PER} on a three-year contract .",
    "The new {PRODUCT} is thinner , lighter and more expensive than the {PRODUCT2} .",
    "Researchers at {ORG} in {LOC} published the results on {day} .",
    "Does anyone know if the {PRODUCT} works with {PRODUCT2} accessories ?",
    "Lovely dinner with {PER} and {PER2} tonight",
    "{LOC} and {LOC2} agreed to reopen the border crossing next month .",
    "{PER} thinks the {PRODUCT} is overrated and I agree",
    "Our correspondent {PER} reports from {LOC} .",
    "{ORG} denied that it had sold customer data to {ORG2} .",
    "Road trip from {LOC} all the way to {LOC2} with {PER}",
    # Ambiguous: the same word as a person and as a place.
    "{AMBP} moved to {AMBL} when they were ten .",
    "{AMBF} says {AMBL} is still her favourite city .",
    "{AMBF} loved her trip to {LOC} last {month} .",
    "We stayed in {AMBL} for a week and it rained every day",
    "{AMBP} , the new head of {ORG} , was born in {LOC} .",
    "Heading to {AMBL} with {AMBP} for the weekend",
    "{AMBF} from accounts is leaving {ORG} for a job in {AMBL} .",
]

NER_EMPTY_TEMPLATES = [
    "The meeting has been moved to {day} afternoon .",
    "Prices for {thing} rose sharply over the last {num} months .",
    "I can not believe how fast this year is going",
    "Anyone know a good recipe for {food} ?",
    "Traffic was terrible this morning , it took me {mins} minutes to get to work .",
    "The new update fixed the battery drain , finally !",
    "It is raining again and I forgot my umbrella",
    "Shares fell slightly in early trading on {day} .",
    "Officials said the bridge would reopen within {num} weeks .",
    "Just finished a {dist} run , feeling {adj}",
    "The committee will publish its report in {month} .",
    "Coffee first , questions later",
    "My phone died halfway through the film",
    "Local schools will close early on {day} because of the storm .",
    "Who else is staying up to watch the match tonight ?",
    "The recipe calls for two cups of flour and a pinch of salt .",
    "Sales of electric bikes doubled compared with last year .",
    "Our team is hiring , send me a message if you are interested",
    "The museum will be closed for repairs until {month} .",
    "Best {food} I have had in a long time !",
    "My {rel} finally learned how to use a {gadget}",
    "Nobody warned me that {thing} would cost this much",
    "The vote was postponed until {day} after a long debate .",
    "Is it just me or is {food} better the next day ?",
]


def _person(rng, first=None):
    r = rng.random()
    first = first or rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    if r < 0.62:
        return [first, last]
    if r < 0.78:
        return [first]
    if r < 0.9:
        return [last]
    return [first, rng.choice(NAME_PARTICLES), last]


def _org(rng):
    r = rng.random()
    if r < 0.6:
        return [rng.choice(ORG_STEMS), rng.choice(ORG_SUFFIXES)]
    if r < 0.8:
        return [rng.choice(ORG_STEMS)]
    return rng.choice(ORG_FIXED).split(" ")


def _product(rng):
    if rng.random() < 0.15:
        return [rng.choice(PRODUCT_BRANDS)]
    return [rng.choice(PRODUCT_BRANDS)] + rng.choice(PRODUCT_MODELS).split(" ")


def _location(rng):
    if rng.random() < 0.08:
        return [rng.choice(AMBIGUOUS)]
    return rng.choice(LOCATIONS).split(" ")


def _entity(slot, rng, ambiguous_word):
    if slot == "PER":
        if rng.random() < 0.05:
            return _person(rng, first=rng.choice(AMBIGUOUS)), "PERSON"
        return _person(rng), "PERSON"
    if slot == "AMBP":
        return [ambiguous_word, rng.choice(LAST_NAMES)], "PERSON"
    if slot == "AMBF":
        return [ambiguous_word], "PERSON"
    if slot == "AMBL":
        return [ambiguous_word], "LOC"
    if slot == "ORG":
        return _org(rng), "ORG"
    if slot == "CLUB":
        return rng.choice(CLUBS).split(" "), "ORG"
    if slot == "LOC":
        return _location(rng), "LOC"
    if slot == "PRODUCT":
        return _product(rng), "PRODUCT"
    raise KeyError(slot)


def make_ner_sentence(template, rng):
    ambiguous_word = rng.choice(AMBIGUOUS)
    values = {}
    tokens, tags = [], []
    for tok in template.split(" "):
        m = re.fullmatch(r"\{([A-Za-z]+?)(\d*)\}", tok)
        if not m:
            tokens.append(tok)
            tags.append("O")
            continue
        slot, key = m.group(1), m.group(0)
        if slot.isupper():
            for _ in range(20):
                words, etype = _entity(slot, rng, ambiguous_word)
                # {PER} and {PER2} should be different people, etc.
                if words not in [v[0] for k, v in values.items() if k != key]:
                    break
            values[key] = (words, etype)
            tokens += words
            tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(words) - 1)
        else:
            words = rng.choice(NER_FILLERS[slot]).split(" ")
            tokens += words
            tags += ["O"] * len(words)
    if rng.random() < 0.06 and tokens[-1] not in ".!?":
        tokens.append("!")
        tags.append("O")
    return list(zip(tokens, tags))


def make_ner(n_train=400, n_dev=100, empty_share=0.15):
    rng = random.Random(SEED + 3)
    total = n_train + n_dev
    n_empty = round(total * empty_share)
    seen = set()
    sentences = []
    for pool, count in ((NER_EMPTY_TEMPLATES, n_empty), (NER_TEMPLATES, total - n_empty)):
        made = 0
        while made < count:
            sent = make_ner_sentence(rng.choice(pool), rng)
            key = tuple(t.lower() for t, _ in sent)
            if key in seen:
                continue
            seen.add(key)
            sentences.append(sent)
            made += 1
    rng.shuffle(sentences)
    return sentences[:n_train], sentences[n_train:]


def conll_lines(sentences):
    lines = []
    for i, sent in enumerate(sentences):
        if i:
            lines.append("")
        lines += [f"{tok}\t{tag}" for tok, tag in sent]
    return lines


def read_and_check_conll(path):
    """Parse a CoNLL file back; raise on any format or IOB2 error."""
    valid = {"O"} | {f"{p}-{t}" for p in "BI" for t in NER_TYPES}
    sentences, current = [], []
    with open(path, encoding="utf-8", newline="") as f:
        content = f.read()
    if "\r" in content or not content.endswith("\n") or content.endswith("\n\n"):
        raise ValueError(f"{path}: bad line endings or trailing blank lines")
    for n, line in enumerate(content.split("\n")[:-1], 1):
        if line == "":
            if not current:
                raise ValueError(f"{path}:{n}: empty sentence")
            sentences.append(current)
            current = []
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0] or cols[0] != cols[0].strip() or " " in cols[0]:
            raise ValueError(f"{path}:{n}: expected 'token<TAB>tag', got {line!r}")
        tok, tag = cols
        if tag not in valid:
            raise ValueError(f"{path}:{n}: bad tag {tag!r}")
        if tag.startswith("I-"):
            prev = current[-1][1] if current else "O"
            if prev == "O" or prev[2:] != tag[2:]:
                raise ValueError(f"{path}:{n}: {tag} after {prev}")
        current.append((tok, tag))
    if current:
        sentences.append(current)
    return sentences


def entity_spans(sent):
    spans, start = [], None
    for i, (_, tag) in enumerate(sent + [("", "O")]):
        if start is not None and not tag.startswith("I-"):
            spans.append((start, i, sent[start][1][2:]))
            start = None
        if tag.startswith("B-"):
            start = i
    return spans


# ---------------------------------------------------------------------------
# 4. Raw text for masked-LM pretraining
# ---------------------------------------------------------------------------

TOWNS = [
    "Marrowby", "Eastholm", "Quillhaven", "Brackenford", "Lowmere", "Wrenfield",
    "Dunmoor", "Pellmouth", "Orrin Bay", "Stavely Cross", "Fallowmere",
    "Ostbridge", "Cairnholt", "Millbeck", "Verrin", "Larkspur Hollow",
]

RAW_WORDS = {
    "name": FIRST_NAMES,
    "town": TOWNS,
    "relative": ["a grandmother", "an uncle", "a neighbour", "an old friend", "a great-aunt", "a former teacher"],
    "ingredient": ["onion", "garlic", "carrot", "leek", "celery", "potato", "mushroom", "tomato", "pepper", "courgette", "spinach", "cabbage", "fennel", "beetroot", "barley", "rice", "squash", "parsnip"],
    "spice": ["cumin", "paprika", "nutmeg", "cinnamon", "black pepper", "dried thyme", "fennel seed", "smoked salt", "chilli flakes"],
    "side": ["crusty bread", "a green salad", "boiled rice", "pickled cabbage", "warm flatbread", "roast potatoes"],
    "minutes": ["five", "ten", "fifteen", "twenty", "thirty", "forty"],
    "amount": ["two cups", "a handful", "three spoons", "half a kilo", "a small bowl", "a generous pinch"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "country": ["Portugal", "Japan", "Chile", "Norway", "Morocco", "Vietnam", "Ireland", "Georgia", "Peru", "Canada", "Kenya", "Greece"],
    "transport": ["train", "ferry", "night bus", "small plane", "shared taxi", "coach"],
    "landmark": ["old lighthouse", "harbour wall", "clock tower", "stone bridge", "hilltop chapel", "botanical garden", "covered market"],
    "adjplace": ["sunny", "quiet", "crowded", "tiled", "leafy", "sloping"],
    "hours": ["two", "three", "four", "six", "eight", "ten", "twelve"],
    "km": ["twelve", "twenty", "thirty", "forty", "fifty"],
    "season": ["spring", "summer", "autumn", "winter"],
    "souvenir": ["wooden spoon", "woven basket", "clay cup", "linen scarf", "small painting"],
    "feature": ["a bright screen", "long battery life", "fast charging", "a good camera", "clear sound", "a light frame", "water resistance"],
    "weeks": ["two", "three", "four", "six", "eight"],
    "material": ["aluminium", "recycled plastic", "brushed steel", "hard rubber", "glass and steel"],
    "colour": ["blue", "green", "white", "black", "sand", "deep red", "silver"],
    "n": ["three", "four", "five", "eight", "ten"],
    "weather": ["sunshine with scattered showers", "heavy rain", "strong winds", "light snow", "clear skies", "low cloud and drizzle", "a mix of sun and cloud"],
    "temp": ["two", "seven", "twelve", "fifteen", "eighteen", "twenty-two", "twenty-six"],
    "direction": ["north", "east", "south", "west", "north-east", "south-west"],
    "cm": ["ten", "twenty", "thirty", "forty", "sixty"],
    "ordinal": ["third", "fifth", "seventh", "tenth", "twelfth"],
    "age": ["six", "seven", "eight", "ten", "twelve"],
    "score": ["one", "two", "three", "four", "five"],
    "capacity": ["four thousand", "eight thousand", "twelve thousand", "twenty thousand"],
    "month": ["May", "June", "October", "November", "April", "March"],
    "adv": ["Usually", "In the end", "Surprisingly", "As always", "Even so", "For a while", "Every year", "Later that day", "Of course", "To be fair", "In practice", "Sometimes"],
}

RAW_CONTEXT = {
    "cooking": {
        "cook": FIRST_NAMES,
        "dish": ["lentil soup", "roasted pepper pasta", "lemon rice", "barley stew", "spiced carrot cake", "chickpea curry", "mushroom pie", "plum tart", "herb omelette", "garlic flatbread", "bean chilli", "apple crumble"],
        "town": TOWNS,
    },
    "travel": {"traveller": FIRST_NAMES, "town": TOWNS, "country": RAW_WORDS["country"], "transport": RAW_WORDS["transport"]},
    "gadgets": {
        "owner": FIRST_NAMES,
        "gadget": [f"{b} {m}" for b in PRODUCT_BRANDS[:8] for m in ["Pad 3", "Air", "Mini", "One", "Go 2"]],
        "kind": ["tablet", "smartwatch", "e-reader", "speaker", "camera", "fitness band", "pair of earbuds", "phone"],
    },
    "weather": {"town": TOWNS, "forecaster": FIRST_NAMES, "season": RAW_WORDS["season"]},
    "sport": {
        "team": [f"{t} {m}" for t in TOWNS[:8] for m in ["Rovers", "Hawks", "Mariners", "Foxes"]],
        "sport": ["football", "basketball", "rugby", "hockey", "volleyball", "netball", "handball"],
        "player": FIRST_NAMES,
        "coach": LAST_NAMES,
        "town": TOWNS,
    },
}

RAW_TEMPLATES = {
    "cooking": [
        "{cook} learned to make {dish} from a notebook that once belonged to {relative}.",
        "The secret to a good {dish} is patience, because the {ingredient} needs time to soften.",
        "Start by chopping the {ingredient} and the {ingredient2} into small, even pieces.",
        "A pinch of {spice} makes the whole kitchen smell warm and inviting.",
        "Most cooks in {town} add {ingredient} to their {dish}, but {cook} prefers {ingredient2}.",
        "If the pan is too hot, the {ingredient} will burn before the {ingredient2} is ready.",
        "Leave the {dish} to rest for {minutes} minutes before serving it.",
        "{cook} serves the {dish} with {side} and a jug of cold water.",
        "Nobody agrees on whether {spice} belongs in {dish}, and the argument never ends.",
        "The market in {town} sells the freshest {ingredient} on {weekday} mornings.",
        "Leftover {dish} tastes even better the next day, when the flavours have settled.",
        "A heavy pot with a tight lid is the best tool for {dish}.",
        "Children usually enjoy stirring the pot and tasting the sauce as it cooks.",
        "When guests arrive early, {cook} hands them a knife and a pile of {ingredient}.",
        "The recipe calls for {amount} of {ingredient}, although {cook} rarely measures anything.",
        "Some people bake the {dish} in the oven, while others cook it slowly on the stove.",
        "After {minutes} minutes, the sauce turns thick and glossy.",
        "Good {dish} does not need expensive ingredients, only care and attention.",
        "{cook} once entered a {dish} competition in {town} and came second.",
        "Wash the {ingredient} well, because grit likes to hide where you least expect it.",
        "A squeeze of lemon at the end wakes up the flavour of the {ingredient}.",
        "There is no shame in using a tin of {ingredient} when time is short.",
        "{cook} writes every change to the recipe in pencil, in case it does not work.",
        "The first time {cook} made {dish}, it was far too salty, and nobody said a word.",
        "Fresh {ingredient} is cheap in {season}, so that is when {dish} appears on every table in {town}.",
        "A wooden spoon, a sharp knife and a good board are all the tools you really need.",
        "{cook} keeps a jar of {spice} by the stove and adds it to almost everything.",
        "Slice the {ingredient} thinly, so that it cooks at the same speed as everything else.",
        "Friends often ask {cook} for the recipe, and the answer changes every time.",
        "The smell of {dish} drifting down the stairs is enough to bring everyone to the kitchen.",
        "A cold {weekday} evening is the perfect excuse for a big pot of {dish}.",
    ],
    "travel": [
        "{traveller} arrived in {town} on a {transport} that was {hours} hours late.",
        "The old quarter of {town} is full of narrow streets, {adjplace} squares and tiny bakeries.",
        "Most visitors to {country} spend only a few days in {town}, which is a pity.",
        "A local guide told {traveller} that the best view is from the {landmark}.",
        "The {transport} from {town} to the coast takes about {hours} hours.",
        "In the evening, families gather by the {landmark} to talk and share food.",
        "{traveller} kept a small notebook and wrote down every new word of the local language.",
        "It is worth carrying a light jacket, because the evenings in {town} can be cool.",
        "The guesthouse was simple, but the owner baked fresh bread every morning.",
        "Prices in {town} are lower than in the capital, especially for food and transport.",
        "On the third day, {traveller} hired a bicycle and followed the river for {km} kilometres.",
        "The {landmark} was built long ago and still draws crowds every {season}.",
        "Travelling slowly gives you time to notice small things: a painted door, a quiet garden, a cat asleep on a wall.",
        "{traveller} missed the last {transport} and spent the night in a café by the station.",
        "Many travellers say that {country} is best seen in {season}, when the weather is mild.",
        "A map is useful, but asking people for directions is often more fun.",
        "The museum in {town} has a room full of old maps and model ships.",
        "Before leaving, {traveller} bought a jar of honey and a hand-made {souvenir}.",
        "The road to {town} climbs through pine forests and past a string of {adjplace} villages.",
        "Nobody in {town} seemed to be in a hurry, and after a day neither was {traveller}.",
        "The {transport} was crowded, but a stranger shared a bag of oranges with {traveller}.",
        "From the top of the {landmark}, the whole of {town} looks like a model village.",
        "{traveller} learned to say good morning, thank you and one more coffee, please.",
        "The best meal of the trip was a bowl of soup in a tiny kitchen near the {landmark}.",
        "Sunrise over the harbour is worth the early alarm, even on holiday.",
        "A festival filled the streets of {town} with music until long after midnight.",
        "{traveller} sent postcards home, although most of them arrived after the trip was over.",
        "The hostel in {town} had a shared kitchen, a shelf of old books and a very friendly dog.",
        "It rained for two days, so {traveller} spent the time in museums and small cafés.",
    ],
    "gadgets": [
        "The {gadget} is a {kind} that promises {feature} at a modest price.",
        "{owner} has been using the {gadget} for {weeks} weeks.",
        "The battery lasts about {hours} hours, which is enough for a long day.",
        "The screen is bright enough to read outdoors, even on a sunny afternoon.",
        "Setting up the {gadget} takes a few minutes and a stable internet connection.",
        "Its case is made of {material}, so it feels solid in the hand.",
        "Some buttons are a little stiff, but they soften after a week of use.",
        "The companion app is simple, although a few menus are hidden too deep.",
        "Compared with last year's model, the {gadget} is lighter and charges faster.",
        "Software updates arrive every few months and usually fix small bugs.",
        "{owner} likes its {feature} most of all.",
        "The {gadget} comes in {colour}, {colour2} and a plain grey.",
        "For most people, the cheaper version is more than good enough.",
        "The box contains the {gadget}, a short cable and a thin manual.",
        "If you drop the {gadget}, the {material} case usually survives without a scratch.",
        "Reviewers have praised its {feature}, but some found the speaker weak.",
        "It connects to other devices over Bluetooth and remembers up to {n} of them.",
        "A {kind} like this is only useful if you actually carry it with you.",
        "{owner} turned off most notifications, and the battery lasted a day longer.",
        "The {gadget} gets warm while charging, but never uncomfortably hot.",
        "It is easy to forget how much a {kind} cost ten years ago.",
        "The {gadget} wakes up as soon as you lift it, which feels like a small piece of magic.",
        "{owner} bought the {gadget} after the old {kind} fell into a bucket of water.",
        "A thin cover protects the screen, but it also hides the {colour} finish.",
        "The microphone picks up voices clearly, even in a noisy room.",
        "There is no headphone socket, which annoyed {owner} for about a day.",
        "The {gadget} is not perfect, but it is the best {kind} {owner} has owned.",
        "Charging from empty to full takes a little over an hour.",
        "The instructions are short, and most people will never need to read them.",
    ],
    "weather": [
        "The morning in {town} began with a thin fog that lifted by ten o'clock.",
        "Forecasters expect {weather} for most of the week.",
        "Temperatures will reach about {temp} degrees in the afternoon.",
        "In {season}, the wind from the {direction} brings cold air over the hills.",
        "Farmers around {town} are hoping for rain after a long dry spell.",
        "{forecaster} said that the storm would pass quickly, but it stayed for two days.",
        "By evening the sky had cleared, and the stars were sharp and bright.",
        "Children in {town} waited all winter for the first proper snow.",
        "A light drizzle is not enough to stop the weekly market.",
        "The river rose by {cm} centimetres after the heavy rain.",
        "Old sailors say that a red sky at night means a calm morning.",
        "{season} is usually the wettest time of year in this part of the country.",
        "Many people carry an umbrella all year, just in case.",
        "Strong gusts knocked over a few fences and scattered leaves across the roads.",
        "The warm spell ended suddenly when the wind turned to the {direction}.",
        "Local schools sometimes close when the roads are covered in ice.",
        "After the storm, the air smelled of wet earth and cut grass.",
        "{forecaster} keeps a notebook of daily temperatures that goes back many years.",
        "On clear days you can see the hills beyond {town} from the harbour.",
        "The first frost arrived early this {season}, and the gardens turned silver.",
        "A bank of dark cloud rolled in from the sea just after lunch.",
        "The wind dropped at dusk, and the town became very quiet.",
        "{forecaster} warned drivers to take care on the coast road, where the fog is thickest.",
        "It was the warmest {season} day anyone in {town} could remember.",
        "Hailstones the size of peas bounced off the cars in the market square.",
        "A rainbow appeared over {town} as the last of the showers moved away.",
        "Gardeners in {town} covered their young plants with old sheets against the frost.",
        "The weather changes so quickly here that people joke about having four seasons in a day.",
    ],
    "sport": [
        "The {team} won their {ordinal} match of the season on {weekday}.",
        "{player} scored early, and the crowd in {town} did not sit down again.",
        "Coach {coach} asked the players to stay calm and keep the ball moving.",
        "Training starts at seven in the morning, whatever the weather.",
        "The {team} lost narrowly after a long and tiring game.",
        "Fans travelled from {town} to support the {team} away from home.",
        "{player} has played {sport} since the age of {age}.",
        "The final score was {score} to {score2}, but the match felt much closer.",
        "Young players at the club learn to pass, to defend and to listen.",
        "After the game, {player} thanked the fans and the volunteers who run the club.",
        "The stadium holds about {capacity} people and is almost always full.",
        "A late injury forced coach {coach} to change the team at the last minute.",
        "Rain made the pitch heavy, and both teams struggled to keep their footing.",
        "The season ends in {month}, and the {team} still have a chance at the title.",
        "Local newspapers called it the best {sport} match in years.",
        "Some players prefer to warm up alone, with music in their ears.",
        "{player} missed a chance in the last minute and looked at the sky in disbelief.",
        "The club was founded by a group of friends who simply wanted somewhere to play {sport}.",
        "Tickets are cheap, and many families come to every home game.",
        "{player} spent the summer working on speed, and it showed in the first match.",
        "The {team} have not lost at home since last {month}.",
        "The referee stopped the game for ten minutes while a dog was chased off the pitch.",
        "Coach {coach} believes that a good team is built in training, not on match day.",
        "Supporters of the {team} sang all the way through the second half.",
        "The captain lifted the trophy while the rain poured down on the stands.",
        "{player} grew up in {town} and still lives two streets away from the ground.",
        "A draw would have been fair, but the {team} found a winner in the final minute.",
    ],
}

RAW_GENERIC = [
    "Not everyone agrees, of course.",
    "That, at least, is what most people say.",
    "There is always something new to learn.",
    "It is the small details that people remember.",
    "Nobody expected it to go so well.",
    "Some things are hard to explain until you see them for yourself.",
    "It was not perfect, but it was close enough.",
    "Looking back, it seems obvious.",
]


# Sentences that should not get an adverbial opener (imperatives, clauses).
NO_ADVERB_FIRST = {"If", "When", "After", "In", "On", "By", "Before", "For", "Start", "Leave", "Wash", "Slice", "From", "It", "A", "There", "Sunrise"}


def make_raw_sentence(topic, ctx, rng, recent):
    if rng.random() < 0.06:
        return rng.choice(RAW_GENERIC)
    options = [t for t in RAW_TEMPLATES[topic] if t not in recent]
    template = rng.choice(options)
    recent.append(template)
    lists = dict(RAW_WORDS)
    lists.update(RAW_CONTEXT[topic])
    sentence = fill(template, rng, lists, ctx)
    adverb = rng.choice(RAW_WORDS["adv"])
    if (
        rng.random() < 0.12
        and sentence.split(" ", 1)[0] not in NO_ADVERB_FIRST
        and adverb.split(" ")[-1].lower() not in sentence.lower()
    ):
        sentence = adverb + ", " + lower_first(sentence)
    return capitalise(sentence)


def make_raw(n_docs=150):
    rng = random.Random(SEED + 4)
    topics = list(RAW_TEMPLATES)
    docs = []
    for i in range(n_docs):
        topic = topics[i % len(topics)]
        # Fix the main characters and subject for the whole document.
        ctx = {key: rng.choice(values) for key, values in RAW_CONTEXT[topic].items()}
        recent = []
        paragraphs = []
        for _ in range(rng.randint(3, 8)):
            sentences = []
            for _ in range(rng.randint(4, 7)):
                if len(recent) > len(RAW_TEMPLATES[topic]) - 4:
                    recent = recent[-6:]
                sentences.append(make_raw_sentence(topic, ctx, rng, recent))
            paragraphs.append(" ".join(sentences))
        docs.append(paragraphs)
    order = list(range(n_docs))
    rng.shuffle(order)
    return [docs[i] for i in order]


# ---------------------------------------------------------------------------
# Main: write files, check them, print a summary
# ---------------------------------------------------------------------------


def check(condition, message, failures):
    if not condition:
        failures.append(message)


def main():
    failures = []

    # 1. textcat
    train, dev = make_textcat()
    for name, records in (("train", train), ("dev", dev)):
        write_lines(HERE / "textcat" / f"{name}.jsonl", [json.dumps(r, ensure_ascii=False) for r in records])
    train_keys = {norm_key(r["text"]) for r in train}
    overlap = sum(norm_key(r["text"]) in train_keys for r in dev)
    check(overlap == 0, f"textcat: {overlap} dev texts repeat train texts", failures)
    print("textcat (positive / negative reviews)")
    for name, records in (("train", train), ("dev", dev)):
        counts = Counter(r["label"] for r in records)
        lengths = [len(r["text"].split()) for r in records]
        rule = sum(keyword_rule(r["text"]) == r["label"] for r in records) / len(records)
        print(
            f"  {name}: {len(records)} lines, labels {dict(sorted(counts.items()))}, "
            f"words/text mean {sum(lengths) / len(lengths):.1f} max {max(lengths)}, "
            f"keyword-rule accuracy {rule:.1%}"
        )
        check(counts["positive"] == counts["negative"], f"textcat {name}: unbalanced", failures)
    all_texts = [r["text"] for r in train + dev]
    n_emoji = sum(any(ord(c) > 0x2000 for c in t) for t in all_texts)
    n_accent = sum(bool(re.search(r"[À-ÿ]", t)) for t in all_texts)
    n_multi = sum(len(re.findall(r"[.!?](\s|$)", t)) >= 3 for t in all_texts)
    print(f"  with emoji: {n_emoji}, with accented letters: {n_accent}, 3+ sentences: {n_multi}")

    # 2. textcat_multilabel
    train, dev = make_multilabel()
    for name, records in (("train", train), ("dev", dev)):
        write_lines(HERE / "textcat_multilabel" / f"{name}.jsonl", [json.dumps(r, ensure_ascii=False) for r in records])
    train_keys = {norm_key(r["text"]) for r in train}
    overlap = sum(norm_key(r["text"]) in train_keys for r in dev)
    check(overlap == 0, f"textcat_multilabel: {overlap} dev texts repeat train texts", failures)
    print("textcat_multilabel (support tickets)")
    for name, records in (("train", train), ("dev", dev)):
        counts = Counter(label for r in records for label in r["labels"])
        sizes = Counter(len(r["labels"]) for r in records)
        print(
            f"  {name}: {len(records)} lines, label counts {dict((l, counts[l]) for l in TICKET_LABELS)}, "
            f"labels per text {dict(sorted(sizes.items()))}"
        )
        check(all(set(r["labels"]) <= set(TICKET_LABELS) for r in records), "multilabel: unknown label", failures)

    # 3. NER
    train, dev = make_ner()
    for name, sents in (("train", train), ("dev", dev)):
        write_lines(HERE / "ner" / f"{name}.conll", conll_lines(sents))
    print("ner (CoNLL, token<TAB>IOB2 tag)")
    parsed = {}
    for name, expected in (("train", train), ("dev", dev)):
        path = HERE / "ner" / f"{name}.conll"
        try:
            sents = read_and_check_conll(path)
        except ValueError as err:
            failures.append(str(err))
            continue
        parsed[name] = sents
        check(sents == [list(s) for s in expected], f"ner {name}: read-back differs", failures)
        ents = Counter(label for s in sents for _, _, label in entity_spans(s))
        multi = sum(e - b > 1 for s in sents for b, e, _ in entity_spans(s))
        empty = sum(not entity_spans(s) for s in sents)
        at_start = sum(s[0][1] != "O" for s in sents)
        at_end = sum(s[-1][1] != "O" or (len(s) > 1 and s[-1][1] == "O" and s[-2][1] != "O") for s in sents)
        n_tokens = sum(len(s) for s in sents)
        print(
            f"  {name}: {len(sents)} sentences, {n_tokens} tokens, entities {dict((t, ents[t]) for t in NER_TYPES)}, "
            f"multi-token {multi}, no-entity sentences {empty}, entity first {at_start}, entity last {at_end}"
        )
    if len(parsed) == 2:
        train_keys = {tuple(t for t, _ in s) for s in parsed["train"]}
        overlap = sum(tuple(t for t, _ in s) in train_keys for s in parsed["dev"])
        check(overlap == 0, f"ner: {overlap} dev sentences repeat train sentences", failures)
        check(len(parsed["train"]) == 400 and len(parsed["dev"]) == 100, "ner: wrong sentence counts", failures)

    # 4. raw text
    docs = make_raw()
    lines = []
    for i, paragraphs in enumerate(docs):
        if i:
            lines.append("")
        lines += paragraphs
    path = HERE / "raw" / "pretrain.txt"
    write_lines(path, lines)
    size = path.stat().st_size
    n_paras = sum(len(d) for d in docs)
    n_words = sum(len(p.split()) for d in docs for p in d)
    n_types = len({w.lower() for d in docs for p in d for w in re.findall(r"[^\W_]+", p)})
    print(
        f"raw/pretrain.txt: {size / 1000:.1f} kB, {len(docs)} documents, {n_paras} paragraphs, "
        f"{n_words} words, {n_types} word types"
    )
    check(200_000 <= size <= 400_000, f"raw: unexpected size {size}", failures)

    if failures:
        print("FAILED checks:")
        for failure in failures:
            print("  " + failure)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
