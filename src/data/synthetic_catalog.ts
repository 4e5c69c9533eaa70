/**
 * The made-up musical-instruments world of the bundled synthetic sample: product types with their
 * follow-up accessories, fictional brands, colours and the phrases titles and descriptions are
 * built from. Every name here is invented; none is a real product or company.
 *
 * @module
 */

/** Price tiers, cheapest first; users prefer one and items show theirs in title and description. */
export const TIERS = ["budget", "mid", "premium"] as const;
/** One of {@linkcode TIERS}. */
export type Tier = typeof TIERS[number];

/** A kind of product, e.g. "Acoustic Guitar" or "Guitar Picks". */
export interface ProductType {
  key: string;
  /** Title-case noun used in titles: "Acoustic Guitar". */
  noun: string;
  /** An instrument people buy accessories for, rather than an accessory. */
  main: boolean;
  /** Mid-tier price in dollars; budget and premium items scale it. */
  basePrice: number;
  /** Variants written after the noun: sizes, gauges, shapes. */
  variants: string[];
  /** Whether colour is part of the title (instruments, straps, bags). */
  coloured: boolean;
  /** One sentence on what it is made of or does; `{variant}` is filled in. */
  feature: string;
  /** Items of this type in the catalogue. */
  count: number;
}

/** For each main instrument: the accessory types bought after it, most likely first, with probabilities. */
export type FollowUps = Record<string, [typeKey: string, probability: number][]>;

const t = (
  key: string,
  noun: string,
  main: boolean,
  basePrice: number,
  variants: string[],
  coloured: boolean,
  feature: string,
  count: number,
): ProductType => ({ key, noun, main, basePrice, variants, coloured, feature, count });

/** Every product type of the catalogue. */
// deno-fmt-ignore
export const PRODUCT_TYPES: ProductType[] = [
  t("acoustic_guitar", "Acoustic Guitar", true, 260, ["Dreadnought", "Concert", "Parlor", "Jumbo"], true, "A solid spruce top and mahogany body give the {variant} a warm, balanced tone.", 44),
  t("electric_guitar", "Electric Guitar", true, 420, ["Solid Body", "Semi-Hollow", "Double Cutaway", "Offset"], true, "Dual humbucking pickups and a fast maple neck make the {variant} easy to play.", 44),
  t("classical_guitar", "Classical Guitar", true, 190, ["Full Size", "3/4 Size", "Cutaway"], true, "Nylon strings and a cedar top give this {variant} model a soft, round voice.", 26),
  t("bass_guitar", "Bass Guitar", true, 380, ["4-String", "5-String", "Short Scale"], true, "A deep alder body and split-coil pickup deliver a punchy {variant} low end.", 30),
  t("ukulele", "Ukulele", true, 90, ["Soprano", "Concert", "Tenor"], true, "The laminated mahogany {variant} body sounds bright and sweet.", 30),
  t("digital_piano", "Digital Piano", true, 650, ["88-Key Weighted", "88-Key Hammer Action", "Compact 88-Key"], true, "Graded {variant} keys and sampled grand piano sounds feel close to an acoustic piano.", 28),
  t("portable_keyboard", "Portable Keyboard", true, 180, ["61-Key", "76-Key", "49-Key"], true, "The {variant} board has touch-sensitive keys, 400 voices and built-in speakers.", 26),
  t("electronic_drum_set", "Electronic Drum Set", true, 520, ["Mesh Head", "Compact", "8-Piece"], false, "{variant} pads with a quiet response let drummers practise with headphones.", 24),
  t("acoustic_drum_kit", "Acoustic Drum Kit", true, 600, ["5-Piece", "Jazz 4-Piece", "Fusion 5-Piece"], true, "The {variant} shells are poplar with chrome hardware and a full sound.", 20),
  t("violin", "Violin", true, 240, ["4/4 Full Size", "3/4 Size", "1/2 Size"], false, "A hand-carved spruce top and ebony fittings give this {variant} instrument a clear tone.", 26),
  t("audio_interface", "USB Audio Interface", true, 160, ["2-In 2-Out", "4-In 4-Out", "1-In 2-Out"], false, "The {variant} unit records at 24-bit 192 kHz with clean microphone preamps.", 22),
  t("condenser_microphone", "Condenser Microphone", true, 140, ["Large Diaphragm", "Cardioid", "USB"], false, "A {variant} capsule captures vocals and acoustic instruments in detail.", 22),
  t("acoustic_strings", "Acoustic Guitar Strings", false, 12, ["Light 12-53", "Extra Light 10-47", "Medium 13-56"], false, "Phosphor bronze wound {variant} strings stay bright and in tune.", 18),
  t("electric_strings", "Electric Guitar Strings", false, 9, ["Regular Light 10-46", "Super Light 9-42", "Heavy 11-52"], false, "Nickel wound {variant} strings give a balanced, punchy tone.", 18),
  t("nylon_strings", "Classical Guitar Strings", false, 11, ["Normal Tension", "Hard Tension"], false, "Clear nylon trebles with {variant} silver basses.", 12),
  t("bass_strings", "Bass Guitar Strings", false, 26, ["Medium 45-105", "Light 40-95"], false, "Round wound {variant} steel strings with a growling low end.", 12),
  t("ukulele_strings", "Ukulele Strings", false, 8, ["Soprano/Concert", "Tenor"], false, "Fluorocarbon {variant} strings with a warm, singing tone.", 12),
  t("violin_strings", "Violin Strings", false, 28, ["4/4 Medium", "3/4 Medium"], false, "Synthetic core {variant} strings with a quick response.", 12),
  t("guitar_picks", "Guitar Picks", false, 7, ["Medium 12 Pack", "Heavy 24 Pack", "Thin Variety Pack"], true, "Celluloid {variant} picks with a grippy surface.", 16),
  t("guitar_strap", "Guitar Strap", false, 18, ["Leather", "Woven Cotton", "Padded"], true, "An adjustable {variant} strap that fits acoustic, electric and bass guitars.", 18),
  t("clip_on_tuner", "Clip-On Tuner", false, 13, ["Chromatic", "Color Display"], true, "A {variant} tuner for guitar, bass, ukulele and violin.", 14),
  t("capo", "Guitar Capo", false, 11, ["Trigger", "Spring Clamp"], true, "A {variant} capo that changes keys in one hand without buzzing.", 12),
  t("gig_bag", "Guitar Gig Bag", false, 38, ["Padded 10mm", "Waterproof"], true, "A {variant} bag with backpack straps and a front pocket.", 14),
  t("guitar_stand", "Guitar Stand", false, 20, ["Folding A-Frame", "Tripod"], true, "A {variant} stand with soft padding that protects the finish.", 12),
  t("instrument_cable", "Instrument Cable", false, 16, ["10 ft", "20 ft"], true, "A {variant} braided cable with low noise and gold plugs.", 12),
  t("guitar_amp", "Guitar Amplifier", false, 160, ["20W Practice", "40W Combo", "Tube 15W"], true, "The {variant} amp has clean and drive channels and a headphone output.", 16),
  t("distortion_pedal", "Distortion Pedal", false, 70, ["Overdrive", "Fuzz", "High Gain"], true, "A {variant} pedal with true bypass and a metal case.", 14),
  t("delay_pedal", "Delay Pedal", false, 90, ["Analog", "Digital"], true, "A {variant} pedal with up to 600 ms of echo.", 10),
  t("bass_amp", "Bass Amplifier", false, 210, ["30W Combo", "100W Combo"], true, "The {variant} amp has a 10 inch speaker and three-band EQ.", 10),
  t("ukulele_case", "Ukulele Case", false, 24, ["Soprano", "Concert", "Tenor"], true, "A padded {variant} case with a shoulder strap.", 10),
  t("sustain_pedal", "Sustain Pedal", false, 22, ["Piano Style", "Universal"], false, "A {variant} pedal with a non-slip rubber base.", 12),
  t("keyboard_stand", "Keyboard Stand", false, 34, ["X-Style", "Z-Style"], true, "A {variant} stand that adjusts in height and width.", 10),
  t("piano_bench", "Piano Bench", false, 55, ["Padded", "Adjustable"], true, "A {variant} bench with a sturdy frame.", 10),
  t("headphones", "Studio Headphones", false, 75, ["Closed-Back", "Open-Back"], true, "{variant} headphones with a flat response for practice and mixing.", 14),
  t("drumsticks", "Drumsticks", false, 12, ["5A Wood Tip", "7A Nylon Tip", "5B Wood Tip"], false, "Hickory {variant} sticks, matched in weight and pitch.", 14),
  t("drum_throne", "Drum Throne", false, 60, ["Round Padded", "Saddle"], true, "A {variant} throne with a spindle height adjustment.", 10),
  t("practice_pad", "Practice Pad", false, 25, ["12 Inch", "6 Inch"], true, "A quiet {variant} gum rubber pad for rudiments.", 10),
  t("crash_cymbal", "Crash Cymbal", false, 110, ["16 Inch", "18 Inch"], false, "A bright {variant} brass cymbal with a fast decay.", 10),
  t("drum_heads", "Drum Heads", false, 45, ["Coated Pack", "Clear Pack"], false, "{variant} heads for a warm, focused attack.", 8),
  t("metronome", "Metronome", false, 20, ["Digital", "Mechanical"], true, "A {variant} metronome with tempo from 30 to 250 bpm.", 8),
  t("rosin", "Violin Rosin", false, 9, ["Light", "Dark"], false, "A {variant} rosin cake for a smooth bow grip.", 10),
  t("shoulder_rest", "Violin Shoulder Rest", false, 24, ["4/4-3/4", "1/2-1/4"], false, "A {variant} rest with adjustable feet.", 8),
  t("violin_bow", "Violin Bow", false, 70, ["Carbon Fiber 4/4", "Brazilwood 4/4"], false, "A balanced {variant} bow with horsehair.", 8),
  t("violin_case", "Violin Case", false, 80, ["Oblong", "Shaped"], true, "A hard-shell {variant} case with a hygrometer.", 8),
  t("xlr_cable", "XLR Microphone Cable", false, 14, ["10 ft", "25 ft"], true, "A {variant} balanced cable with metal connectors.", 10),
  t("mic_stand", "Microphone Stand", false, 30, ["Boom Arm", "Tripod Boom"], true, "A {variant} stand that holds any standard microphone.", 10),
  t("pop_filter", "Pop Filter", false, 13, ["Dual Layer", "Metal Mesh"], false, "A {variant} screen that removes plosives from vocals.", 8),
  t("studio_monitors", "Studio Monitors", false, 220, ["5 Inch Pair", "8 Inch Pair"], true, "Powered {variant} speakers with an accurate, flat response.", 10),
];

/** Accessories bought after each main instrument (rough order of purchase) and how often. */
// deno-fmt-ignore
export const FOLLOW_UPS: FollowUps = {
  acoustic_guitar: [["acoustic_strings", 0.9], ["guitar_picks", 0.8], ["clip_on_tuner", 0.75], ["capo", 0.65], ["guitar_strap", 0.6], ["gig_bag", 0.45], ["guitar_stand", 0.4]],
  electric_guitar: [["electric_strings", 0.9], ["guitar_picks", 0.8], ["instrument_cable", 0.8], ["guitar_amp", 0.75], ["clip_on_tuner", 0.6], ["guitar_strap", 0.55], ["distortion_pedal", 0.5], ["delay_pedal", 0.35], ["guitar_stand", 0.35]],
  classical_guitar: [["nylon_strings", 0.9], ["clip_on_tuner", 0.7], ["guitar_stand", 0.5], ["gig_bag", 0.5], ["metronome", 0.3]],
  bass_guitar: [["bass_strings", 0.85], ["bass_amp", 0.7], ["instrument_cable", 0.7], ["guitar_strap", 0.5], [
    "clip_on_tuner",
    0.5,
  ], ["gig_bag", 0.3]],
  ukulele: [["ukulele_strings", 0.85], ["clip_on_tuner", 0.7], ["ukulele_case", 0.6], ["guitar_strap", 0.35], ["capo", 0.25]],
  digital_piano: [["sustain_pedal", 0.9], ["piano_bench", 0.7], ["headphones", 0.6], ["keyboard_stand", 0.4], ["metronome", 0.3]],
  portable_keyboard: [["keyboard_stand", 0.8], ["sustain_pedal", 0.7], ["headphones", 0.55], [
    "piano_bench",
    0.4,
  ]],
  electronic_drum_set: [["drumsticks", 0.9], ["drum_throne", 0.8], ["headphones", 0.6], [
    "practice_pad",
    0.3,
  ]],
  acoustic_drum_kit: [["drumsticks", 0.9], ["drum_throne", 0.7], ["crash_cymbal", 0.6], ["drum_heads", 0.6], [
    "practice_pad",
    0.4,
  ], ["metronome", 0.3]],
  violin: [["rosin", 0.9], ["violin_strings", 0.8], ["shoulder_rest", 0.7], ["clip_on_tuner", 0.5], [
    "violin_bow",
    0.4,
  ], ["violin_case", 0.4]],
  audio_interface: [["xlr_cable", 0.8], ["condenser_microphone", 0.7], ["headphones", 0.7], ["studio_monitors", 0.6], ["mic_stand", 0.5], ["pop_filter", 0.5]],
  condenser_microphone: [["pop_filter", 0.8], ["mic_stand", 0.8], ["xlr_cable", 0.8], [
    "audio_interface",
    0.6,
  ], ["headphones", 0.5]],
};

/** How often a new user's first instrument is of each main type. */
// deno-fmt-ignore
export const MAIN_WEIGHTS: Record<string, number> = {
  acoustic_guitar: 18,
  electric_guitar: 16,
  classical_guitar: 6,
  bass_guitar: 7,
  ukulele: 8,
  digital_piano: 9,
  portable_keyboard: 6,
  electronic_drum_set: 7,
  acoustic_drum_kit: 4,
  violin: 6,
  audio_interface: 7,
  condenser_microphone: 6,
};

/** A second instrument often joins the first (guitarists start recording, pianists try ukulele…). */
// deno-fmt-ignore
export const SECOND_MAIN: Record<string, string[]> = {
  acoustic_guitar: ["electric_guitar", "ukulele", "condenser_microphone"],
  electric_guitar: ["bass_guitar", "audio_interface", "acoustic_guitar"],
  classical_guitar: ["acoustic_guitar", "ukulele"],
  bass_guitar: ["electric_guitar", "audio_interface"],
  ukulele: ["acoustic_guitar", "classical_guitar"],
  digital_piano: ["audio_interface", "portable_keyboard"],
  portable_keyboard: ["digital_piano", "ukulele"],
  electronic_drum_set: ["acoustic_drum_kit", "audio_interface"],
  acoustic_drum_kit: ["electronic_drum_set", "audio_interface"],
  violin: ["digital_piano", "ukulele"],
  audio_interface: ["condenser_microphone", "digital_piano", "electric_guitar"],
  condenser_microphone: ["audio_interface", "acoustic_guitar"],
};

/** A fictional brand: the types it makes and the tier it leans to. */
export interface Brand {
  name: string;
  /** Product type keys it makes. */
  makes: string[];
  /** Tier it mostly sells in. */
  tier: Tier;
  /** Its model-code prefix, e.g. "SD" → "SD-210". */
  code: string;
}

// deno-fmt-ignore
const GUITAR_MAINS = ["acoustic_guitar", "electric_guitar", "classical_guitar", "bass_guitar", "ukulele"];
// deno-fmt-ignore
const STRINGS = [
  "acoustic_strings",
  "electric_strings",
  "nylon_strings",
  "bass_strings",
  "ukulele_strings",
  "violin_strings",
];
// deno-fmt-ignore
const SMALL_GEAR = [
  "guitar_picks",
  "guitar_strap",
  "clip_on_tuner",
  "capo",
  "metronome",
  "rosin",
  "shoulder_rest",
];
// deno-fmt-ignore
const CARRY = [
  "gig_bag",
  "guitar_stand",
  "ukulele_case",
  "keyboard_stand",
  "piano_bench",
  "drum_throne",
  "violin_case",
  "mic_stand",
];
// deno-fmt-ignore
const ELECTRIC = ["guitar_amp", "distortion_pedal", "delay_pedal", "bass_amp", "instrument_cable"];
// deno-fmt-ignore
const STUDIO = [
  "audio_interface",
  "condenser_microphone",
  "headphones",
  "xlr_cable",
  "pop_filter",
  "studio_monitors",
];

/** Every brand of the catalogue. */
// deno-fmt-ignore
export const BRANDS: Brand[] = [
  { name: "Harlowe", makes: [...GUITAR_MAINS, "guitar_strap", "gig_bag"], tier: "premium", code: "HW" },
  { name: "Kestrel", makes: ["acoustic_guitar", "electric_guitar", "bass_guitar", "guitar_amp", "bass_amp"], tier: "mid", code: "KS" },
  { name: "Brightwood", makes: ["acoustic_guitar", "classical_guitar", "ukulele", "violin", ...STRINGS], tier: "budget", code: "BW" },
  { name: "Norvik", makes: ["digital_piano", "portable_keyboard", "sustain_pedal", "headphones", "audio_interface"], tier: "premium", code: "NV" },
  { name: "Tempo Works", makes: ["portable_keyboard", "electronic_drum_set", "metronome", "practice_pad", "sustain_pedal", "drumsticks"], tier: "budget", code: "TW" },
  { name: "Ironbeat", makes: ["electronic_drum_set", "acoustic_drum_kit", "drumsticks", "drum_throne", "crash_cymbal", "drum_heads"], tier: "mid", code: "IB" },
  { name: "Corvella", makes: ["violin", "classical_guitar", "violin_bow", "violin_case", "violin_strings", "rosin", "shoulder_rest"], tier: "premium", code: "CV" },
  { name: "Sonara", makes: [...STUDIO, "digital_piano"], tier: "mid", code: "SN" },
  { name: "Voltaic", makes: [...ELECTRIC, "electric_guitar", "xlr_cable"], tier: "mid", code: "VT" },
  { name: "Pickwell", makes: [...STRINGS, ...SMALL_GEAR], tier: "budget", code: "PW" },
  { name: "Bluestone", makes: [...CARRY, "instrument_cable", "xlr_cable", "pop_filter"], tier: "budget", code: "BS" },
  { name: "Aurelio", makes: [...GUITAR_MAINS, "acoustic_strings", "capo", "guitar_stand"], tier: "premium", code: "AU" },
  { name: "Mapleton", makes: ["acoustic_guitar", "ukulele", "digital_piano", "piano_bench", "keyboard_stand", "guitar_stand"], tier: "mid", code: "MT" },
  { name: "Redfern", makes: ["drumsticks", "practice_pad", "drum_heads", "headphones", "studio_monitors", "mic_stand"], tier: "premium", code: "RF" },
];

/** Colours written into titles of coloured types. */
export const COLOURS = [
  "Sunburst",
  "Natural",
  "Black",
  "Cherry Red",
  "Ocean Blue",
  "Vintage White",
  "Tobacco Burst",
  "Sea Foam Green",
];

/** Words a title uses for each tier. */
export const TIER_TITLE_WORDS: Record<Tier, string[]> = {
  budget: ["Beginner", "Starter", "Student"],
  mid: ["Classic", "Standard", "Performer"],
  premium: ["Professional", "Pro Series", "Artist Series"],
};

/** Sentences a description uses for each tier. */
export const TIER_SENTENCES: Record<Tier, string[]> = {
  budget: [
    "An affordable choice for beginners, students and casual players.",
    "Great value for the price and easy on a small budget.",
  ],
  mid: [
    "A reliable everyday choice for gigging and practice.",
    "Solid quality at a fair price for improving players.",
  ],
  premium: [
    "Built with premium materials for professional musicians who demand the best.",
    "Handcrafted, inspected by hand and made to last for decades.",
  ],
};

/** Padding that turns a title into an over-long "search keyword" title (dropped by the 20-word rule). */
export const KEYWORD_STUFFING =
  "Perfect Gift for Beginners Kids Adults Teens Men Women Christmas Birthday Music Lovers Home Studio Stage";
