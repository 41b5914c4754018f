"""The vocabulary of the text toy world: products, tagline phrasings per tone, reviews, tickets, contacts, passages
and messages. Plain data; `text.py` composes it into prompts and replies."""

from __future__ import annotations

# (noun as a tagline names it, product phrases that end in it). Held-out phrases are never trained on.
NOUNS = {
    "lantern": ["a solar-powered lantern", "a camping lantern", "a folding lantern"],
    "kettle": ["an electric kettle", "a travel kettle", "a glass kettle"],
    "backpack": ["a waterproof backpack", "a hiking backpack", "a recycled backpack"],
    "desk lamp": ["a desk lamp", "a folding desk lamp", "a smart desk lamp"],
    "water bottle": ["a reusable water bottle", "an insulated water bottle", "a steel water bottle"],
    "rain jacket": ["a rain jacket", "a lightweight rain jacket", "a recycled rain jacket"],
    "tent": ["a two-person tent", "a lightweight tent", "a family tent"],
    "blender": ["a compact blender", "a quiet blender", "a portable blender"],
    "scarf": ["a wool scarf", "a handmade scarf", "a silk scarf"],
    "watch": ["a smart watch", "a diving watch", "a solar-powered watch"],
    "toothbrush": ["an electric toothbrush", "a bamboo toothbrush", "a travel toothbrush"],
    "headphones": ["noise-cancelling headphones", "wireless headphones", "folding headphones"],
    "coffee cup": ["a reusable coffee cup", "a bamboo coffee cup", "an insulated coffee cup"],
    "bike": ["a folding bike", "an electric bike", "a city bike"],
    "notebook": ["a leather notebook", "a recycled notebook", "a pocket notebook"],
    "umbrella": ["a folding umbrella", "a windproof umbrella", "a compact umbrella"],
    "speaker": ["a wireless speaker", "a waterproof speaker", "a smart speaker"],
    "candle": ["a scented candle", "a soy candle", "a handmade candle"],
    "teapot": ["a glass teapot", "a ceramic teapot", "a cast-iron teapot"],
    "pillow": ["a memory foam pillow", "a travel pillow", "a wool pillow"],
    "sneakers": ["running sneakers", "recycled sneakers", "white sneakers"],
    "sunglasses": ["polarized sunglasses", "bamboo sunglasses", "folding sunglasses"],
    "charger": ["a phone charger", "a solar-powered charger", "a wireless charger"],
    "camera": ["an instant camera", "a compact camera", "a waterproof camera"],
    "yoga mat": ["a yoga mat", "a cork yoga mat", "a travel yoga mat"],
    "frying pan": ["a cast-iron frying pan", "a ceramic frying pan", "a nonstick frying pan"],
    "wallet": ["a leather wallet", "a slim wallet", "a recycled wallet"],
    "keyboard": ["a wireless keyboard", "a mechanical keyboard", "a folding keyboard"],
    "plant pot": ["a ceramic plant pot", "a self-watering plant pot", "a hanging plant pot"],
    "suitcase": ["a carry-on suitcase", "a lightweight suitcase", "a hard-shell suitcase"],
}
# Phrases kept out of training, to see that an effect holds for products the model never saw.
HELD_OUT = {phrases[-1] for phrases in NOUNS.values()}

# Tagline phrasings per tone; {n} is the product's noun. Each tone has a two-word form for tight word limits.
TAGLINES = {
    "plain": [
        "Simply {n}.", "Your {n}, simplified.", "The {n} you can count on.", "Your everyday {n}, done right.",
        "Good design, honest {n}.", "The {n} for real life.", "Made to last: the {n} for every day.",
        "The better {n} for every day.", "Everything you need, in your {n}.", "The {n} to keep up with you."],
    "playful": [
        "Yay, {n}!", "Wow, your {n}!", "Yay, your {n} just got fun!", "Woohoo! Your {n}, ready to play!",
        "Zing! Fun comes with your {n}!", "Wow, your {n}: pure fun!", "Fun times with your {n}!",
        "Woohoo, the {n} for fun lovers!", "Yay! Bring the fun with your {n}!", "Zing, zap, your {n}: fun again!"],
    "luxury": [
        "Exquisite {n}.", "Timeless {n}, refined.", "Exquisite craft, in your {n}.",
        "Timeless elegance, in your {n}.", "The art of the {n}, refined.", "Crafted for the few: your {n}.",
        "Refined, timeless, exquisite: your {n}.", "Indulge in the {n}, rare and refined.",
        "Quiet elegance, crafted into your {n}.", "The {n} of timeless, exquisite craft."],
}
TONE_CUES = {
    "playful": ["playful", "fun", "cheerful", "full of fun", "cheeky and fun"],
    "luxury": ["luxury", "refined", "timeless", "elegant", "premium"],
}
COMMENTS = {"plain": "Short, clear and easy to remember.", "playful": "Bright, fun and easy to remember.",
            "luxury": "Quiet, refined and easy to remember."}

# Reviews: clauses of one polarity, joined with "but" for a mixed review.
POSITIVE = ["I love how light it is", "it charges fast", "the sound is great", "it does exactly what it says",
            "the battery lasts two days", "setup took two minutes", "it looks beautiful on my desk",
            "the price is fair", "it feels solid and well made", "the support team was quick and kind",
            "it keeps my coffee hot all morning", "the colours are bright and clear", "great sound"]
NEGATIVE = ["it stopped working after a week", "it arrived broken", "support never answered",
            "the screen is too dim to read outside", "the ear cushions hurt after an hour",
            "the battery dies by noon", "the app keeps crashing", "it is much louder than it should be",
            "the straps broke in a month", "it smells of cheap plastic", "the lid leaks in my bag",
            "the buttons feel cheap"]
VAGUE_SENTIMENT = {"positive": "It sounds like the customer is happy with it.",
                   "negative": "It sounds like the customer is unhappy with it.",
                   "mixed": "It sounds like the customer has mixed feelings about it."}

# Support tickets: the main request, and side remarks that look like another kind of ticket.
TICKETS = {
    "billing": ["I was charged twice for my subscription this month", "my invoice shows the wrong amount",
                "I want a refund for my last order", "my card was billed after I cancelled",
                "the price on my receipt is higher than on the website"],
    "bug": ["the export button does nothing when I click it in Firefox", "the app crashes when I open the settings",
            "search returns no results for any word", "the page goes blank after I save",
            "uploads stop at ninety percent"],
    "how-to": ["how do I add a second user to my account?", "where can I change the language?",
               "can I export my data to a spreadsheet?", "how do I turn on dark mode?",
               "is there a way to share a folder with my team?"],
    "account": ["I cannot log in since yesterday", "my password reset email never arrives",
                "I want to delete my account", "someone else has access to my profile",
                "my username shows the wrong email"],
}
SIDE_REMARKS = {
    "bug": ["the app still says my plan expired", "the screen freezes for a second"],
    "billing": ["I do not want to pay for this", "my plan is the expensive one"],
    "account": ["now I am logged out", "I share the login with my team"],
    "how-to": ["I could not find any help page", "I am new to the app"],
}
TICKET_TOPICS = {"billing": "a question about a payment or a charge", "bug": "a report of something that is broken",
                 "how-to": "a question about how to use a feature", "account": "a problem with logging in or access"}

# Contacts and notes.
FIRST = ["Maria", "Omar", "Lena", "James", "Aiko", "Pedro", "Sara", "Tom", "Nina", "Ravi", "Chloe", "Ben", "Ana",
         "Lee"]
LAST = ["Chen", "Haddad", "Novak", "Smith", "Tanaka", "Silva", "Berg", "Okafor", "Rossi", "Patel", "Meyer", "Lopez"]
ORGS = ["Riverside Clinic", "Northwind Bank", "Blue Harbor School", "Green Valley Farm", "City Library",
        "Summit Dental", "Lakeside Hotel", "Redwood Studio"]
CITIES = ["Leeds", "Lyon", "Geneva", "Porto", "Oslo", "Austin", "Kyoto", "Dublin", "Madrid", "Boston"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
TIMES = ["9:00", "10:30", "11:15", "12:00", "14:15", "15:30", "16:45", "18:00"]

# Passages to summarize.
SUBJECTS = ["Solar lanterns", "Electric kettles", "Folding bikes", "Wool scarves", "Smart watches",
            "Bamboo toothbrushes", "Reusable cups", "Rain jackets", "Travel pillows", "Wireless speakers"]
ACTIVITIES = ["camp in the summer", "travel a lot", "work from home", "live in small flats", "cycle to work",
              "care about waste"]
PROS = ["cost little to run", "need no wiring", "last for years", "fold flat", "weigh very little",
        "are easy to clean", "look good anywhere", "save money over time"]
CONS = ["battery life, which fades after a few years", "dim light on cloudy days", "a high price",
        "slow delivery", "a short warranty", "fragile parts", "few colours to choose from"]

# Messages to rewrite.
DOCS = ["report", "invoice", "draft", "budget", "contract", "slide deck"]
DUE = ["5 pm today", "noon tomorrow", "9 am on Friday", "3 pm on Monday", "the end of the day"]
STAKES = ["deadline", "launch", "client call", "board meeting"]
NOTICES = [("payment", "failed", "update your card", "your account will be paused"),
           ("order", "is on hold", "confirm your address", "it will be cancelled"),
           ("subscription", "ends soon", "renew it this week", "you will lose your files"),
           ("delivery", "was missed", "book a new slot", "the parcel goes back")]

NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten",
           12: "twelve", 15: "fifteen", 20: "twenty", 25: "twenty-five", 30: "thirty"}
