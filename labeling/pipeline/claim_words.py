"""The word lists claim grounding (:mod:`.claims`) reads: which words are claims of which kind, which are plain
English, and which spellings mean the same thing. Data only; lower-case surface forms, matched after the same
normalisation as the text (folded to ASCII, stemmed), so inflected forms need no entry of their own."""

# Spellings that mean the same thing, mapped to one canonical spelling (on both the rationale and the pair text).
SYNONYMS = {
    "postgres": "postgresql", "psql": "postgresql", "k8s": "kubernetes", "js": "javascript", "ecmascript": "javascript",
    "ts": "typescript", "golang": "go", "nodejs": "node", "node.js": "node", "reactjs": "react", "react.js": "react",
    "vuejs": "vue", "vue.js": "vue", "angularjs": "angular", "py": "python", "ml": "machine learning",
    "ai": "artificial intelligence", "nlp": "natural language processing", "gcp": "google cloud",
    "aws": "amazon web services", "ms excel": "excel", "microsoft excel": "excel", "ms sql": "sql server",
    "mssql": "sql server", "ci/cd": "ci cd", "sre": "site reliability", "qa": "quality assurance",
    "hr": "human resources", "icu": "intensive care", "intensive care unit": "intensive care",
    "er": "emergency", "a&e": "emergency", "emergency department": "emergency",
    "emergency room": "emergency", "rn": "registered nurse", "ehr": "electronic health record",
    "emr": "electronic health record", "bls": "basic life support", "acls": "advanced cardiac life support",
    "sfdc": "salesforce", "hubspot crm": "hubspot", "b2b": "business to business", "saas": "software as a service",
    "full stack": "fullstack", "full-stack": "fullstack", "front end": "frontend", "front-end": "frontend",
    "back end": "backend", "back-end": "backend", "on site": "onsite", "on-site": "onsite", "in office": "onsite",
    "work from home": "remote", "wfh": "remote", "remote-first": "remote", "telecommute": "remote",
    "licence": "certificate", "license": "certificate", "licensed": "certificate", "licenced": "certificate",
    "licensure": "certificate", "registration": "registered",
    "hv": "high voltage",
    "certified": "certificate", "certification": "certificate", "cert": "certificate", "accredited": "certificate",
    "accreditation": "certificate", "phd": "doctorate", "ph.d": "doctorate", "dphil": "doctorate",
    "doctoral": "doctorate", "msc": "master", "m.sc": "master", "meng": "master", "m.eng": "master",
    "masters": "master", "bsc": "bachelor", "b.sc": "bachelor", "beng": "bachelor", "b.eng": "bachelor",
    "ba": "bachelor", "b.a": "bachelor", "bs": "bachelor", "b.s": "bachelor", "undergraduate degree": "bachelor",
    "bsn": "bachelor nursing", "msn": "master nursing", "vp": "vice president", "svp": "vice president",
    "evp": "vice president", "mid-level": "mid", "midlevel": "mid", "intermediate": "mid", "sr": "senior",
    "snr": "senior", "jr": "junior", "jnr": "junior", "entry-level": "junior", "entry level": "junior",
    "nyc": "new york", "sf": "san francisco", "uk": "united kingdom", "usa": "united states",
    "munchen": "munich", "koln": "cologne", "wien": "vienna", "lisboa": "lisbon", "praha": "prague",
    "warszawa": "warsaw", "milano": "milan", "roma": "rome", "firenze": "florence", "napoli": "naples",
    "torino": "turin", "kobenhavn": "copenhagen", "geneve": "geneva", "bruxelles": "brussels",
    "den haag": "the hague", "goteborg": "gothenburg", "nurnberg": "nuremberg", "sevilla": "seville",
    "bombay": "mumbai", "bangalore": "bengaluru", "kiev": "kyiv", "moskva": "moscow",
    "peking": "beijing", "dongjing": "tokyo",
}  # fmt: skip

# Degrees: their canonical words (after SYNONYMS); a generic "degree" claim is supported by any of them.
DEGREE_WORDS = {"bachelor", "master", "doctorate", "degree", "mba", "diploma", "associate degree", "md", "jd",
                "llb", "ll.m", "pharmd", "dnp", "dds", "dvm", "hnd", "nvq", "abitur", "bootcamp"}  # fmt: skip
# Certificates and licences, named by these words or by one of the acronyms.
CREDENTIAL_WORDS = {"certificate", "qualification", "chartered", "registered", "journeyman", "apprenticeship"}
CREDENTIAL_ACRONYMS = {
    "cpa", "acca", "cima", "cfa", "frm", "pmp", "prince2", "capm", "cissp", "cism", "cisa", "ceh", "oscp", "ccna",
    "ccnp", "ccie", "cka", "ckad", "rhce", "mcse", "lpn", "lvn", "cna", "pals", "nrp", "tncc", "ccrn",
    "cdl", "osha", "nebosh", "iosh", "cscs", "itil", "csm", "psm", "cpr", "hgv", "lgv", "emt",
    "leed", "shrm", "cipd", "cips", "cpsm", "series 7", "finra", "gas safe",
    "six sigma", "scrum master", "red seal", "first aid", "food hygiene", "servsafe",
}  # fmt: skip

# Seniority and titles. RANKS are always claims; ROLE_RANKS only before a role noun ("staff engineer", "lead role")
# or, for "lead", after "tech"/"team"; "head" only in "head of".
RANKS = {"intern", "internship", "trainee", "apprentice", "junior", "mid", "senior", "director", "vice president",
         "chief", "executive", "cto", "ceo", "cfo", "coo", "cio", "cmo", "cpo", "manager", "supervisor", "foreman",
         "superintendent", "partner"}  # fmt: skip
ROLE_RANKS = {"staff", "principal", "lead", "head"}
ROLE_NOUNS = {
    "engineer", "developer", "designer", "scientist", "analyst", "architect", "consultant", "nurse", "technician",
    "electrician", "plumber", "manager", "role", "position", "level", "title", "researcher", "accountant",
    "administrator", "programmer", "product", "data", "software", "backend", "frontend", "ml", "machine", "chef",
    "cook", "midwife", "teacher", "mechanic", "driver", "agent", "representative", "clerk", "buyer", "planner",
    "coordinator", "officer", "specialist", "therapist", "pharmacist", "physician", "doctor", "surgeon", "waiter",
}  # fmt: skip
# "hiring manager" says nothing of the member, "too senior" judges the gap, not the level.
NOT_A_TITLE_BEFORE = {"hiring", "line", "your", "their", "his", "her", "too", "overly", "over"}

# Skills and tools people write in lower case (capitalised ones are caught as names anyway).
SKILLS = {
    "python", "java", "javascript", "typescript", "sql", "nosql", "kotlin", "swift", "rust", "scala", "ruby", "php",
    "excel", "spreadsheets", "machine learning", "deep learning", "artificial intelligence", "computer vision",
    "natural language processing", "data science", "data engineering", "data modelling", "data modeling",
    "data warehousing", "etl", "statistics", "forecasting", "a/b testing", "cloud", "devops", "microservices",
    "kubernetes", "docker", "terraform", "ansible", "linux", "networking", "cybersecurity", "penetration testing",
    "frontend", "backend", "fullstack", "mobile development", "ios", "android", "graphql", "rest apis", "ci cd",
    "site reliability", "quality assurance", "test automation", "ux research", "user research", "prototyping",
    "wireframing", "illustration", "copywriting", "seo", "sem", "content marketing", "social media",
    "triage", "phlebotomy", "wound care", "intensive care", "emergency", "emergency care", "palliative care",
    "medication administration",
    "patient care", "patient safety", "infection control", "basic life support", "advanced cardiac life support",
    "electronic health record", "ventilator management", "iv therapy", "midwifery", "radiography", "physiotherapy",
    "pharmacology", "dementia care", "paediatrics", "pediatrics", "oncology", "cardiology", "anaesthesia",
    "cold calling", "prospecting", "lead generation", "negotiation", "account management", "pipeline management",
    "crm", "business to business", "software as a service", "key account management", "upselling",
    "welding", "tig welding", "mig welding", "plumbing", "pipefitting", "carpentry", "joinery", "bricklaying",
    "roofing", "hvac", "refrigeration", "electrical installation", "wiring", "blueprint reading", "forklift",
    "cnc machining", "machining", "scaffolding", "plastering", "tiling", "landscaping", "solar installation",
    "bookkeeping", "accounting", "auditing", "payroll", "tax returns", "financial modelling", "financial modeling",
    "budgeting", "reconciliation", "accounts payable", "accounts receivable", "project management",
    "stakeholder management", "people management", "team leadership", "mentoring", "recruiting", "onboarding",
    "customer service", "logistics", "supply chain", "procurement", "inventory management", "warehousing",
    "teaching", "tutoring", "translation", "interpreting", "cooking", "baking", "barista", "photography",
    "video editing", "animation", "3d modelling", "node", "dbt", "git", "pandas", "numpy", "jira", "airflow",
}  # fmt: skip

# Where a capitalised name is a place (for the check's wording only: every name must be grounded anyway).
PLACES = {
    "remote", "hybrid", "onsite", "anywhere", "berlin", "munich", "hamburg", "cologne", "frankfurt", "dusseldorf",
    "stuttgart", "leipzig", "dresden", "paris", "lyon", "marseille", "toulouse", "lille", "london", "manchester",
    "birmingham", "leeds", "glasgow", "edinburgh", "bristol", "dublin", "cork", "madrid", "barcelona", "valencia",
    "seville", "lisbon", "porto", "rome", "milan", "turin", "naples", "florence", "vienna", "zurich", "geneva",
    "basel", "amsterdam", "rotterdam", "utrecht", "the hague", "brussels", "antwerp", "copenhagen", "stockholm",
    "gothenburg", "oslo", "helsinki", "warsaw", "krakow", "lodz", "wroclaw", "prague", "budapest", "bucharest",
    "athens", "istanbul", "kyiv", "new york", "san francisco", "seattle", "boston", "chicago", "austin", "denver",
    "los angeles", "toronto", "montreal", "vancouver", "sao paulo", "rio de janeiro", "mexico city", "bogota",
    "buenos aires", "santiago", "lima", "beijing", "shanghai", "shenzhen", "tokyo", "osaka", "seoul", "singapore",
    "mumbai", "bengaluru", "delhi", "sydney", "melbourne", "auckland", "cape town", "lagos", "nairobi", "cairo",
    "dubai", "germany", "france", "spain", "portugal", "italy", "netherlands", "belgium", "austria", "switzerland",
    "poland", "sweden", "norway", "denmark", "finland", "ireland", "united kingdom", "united states", "canada",
    "brazil", "mexico", "india", "china", "japan", "australia", "europe", "emea", "apac", "bavaria", "california",
    "texas", "ontario", "quebec",
}  # fmt: skip
# Work modes, claims about where the work happens even in lower case.
WORK_MODES = {"remote", "hybrid", "onsite"}
# Employers the wording calls organisations; any other name after "at", "for", "joined" is one too.
ORGANISATIONS = {
    "google", "alphabet", "amazon", "microsoft", "apple", "meta", "facebook", "netflix", "ibm", "oracle", "sap",
    "siemens", "bosch", "volkswagen", "bmw", "mercedes", "deloitte", "pwc", "kpmg", "ey", "accenture", "mckinsey",
    "goldman sachs", "jpmorgan", "deutsche bank", "barclays", "hsbc", "nhs", "mayo clinic", "kaiser", "charite",
    "spotify", "zalando", "uber", "airbnb", "stripe", "tesla", "nvidia", "intel", "salesforce", "shopify",
}  # fmt: skip
ORGANISATION_ENDINGS = {
    "inc", "ltd", "gmbh", "ag", "sa", "plc", "llc", "bank", "hospital", "clinic", "university", "college", "institute",
    "group", "labs", "consulting", "partners", "health", "foundation",
}  # fmt: skip
ORGANISATION_CUES = {"at", "for", "joined"}

# Units of numbers that are counts of the labeling itself, not facts ("2 of 3 required skills", "one level").
META_UNITS = {"of", "out", "required", "skill", "requirement", "rule", "label", "level", "sample", "point", "score",
              "criterion", "criteria", "must-have", "must", "match", "gap", "step", "band", "factor", "other", "more",
              "way", "thing", "time", "reason", "issue", "concern", "aspect", "area", "sign", "x", "and", "to",
              "or", "in", "the", "a", "for", "with", "on", "at", "is", "are", "it", "but"}  # fmt: skip
TIME_UNITS = {
    "year": "year", "yr": "year", "yrs": "year", "y": "year", "decade": "year", "month": "month", "mo": "month",
    "week": "week", "wk": "week", "day": "day", "hour": "hour", "hr": "hour", "hrs": "hour", "h": "hour",
}  # fmt: skip
PEOPLE_UNITS = {"people", "person", "staff", "employee", "engineer", "developer", "nurse", "report", "member",
                "agent", "rep", "technician", "worker", "apprentice", "headcount", "fte", "hire", "designer",
                "analyst", "scientist", "team", "crew", "colleague", "patient", "client", "customer"}  # fmt: skip
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
                "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
                "fifty": 50, "a dozen": 12, "dozen": 12, "a decade": 10, "a couple of": 2, "a few": 3}  # fmt: skip

# Words that never make a claim on their own: what a rationale says about the labeling, and the plain English a
# sentence starts with ("Strong Python skills": "Strong" is not a name; "Python" is).
META = {
    "llm", "heuristic", "baseline", "teacher", "model", "policy", "rule", "label", "rationale", "score", "json", "id",
    "member", "candidate", "applicant", "job", "posting", "role", "profile", "match", "fit", "ok",
}  # fmt: skip
_COMMON_TEXT = """a an the this that these those it its they their them he his him she her hers we our you your i my me
    and or but so yet nor if then than as because since while although though however also both either neither
    not no nor only just very quite rather too more most less least much many few some any all each every other
    another such same own is are was were be been being has have had having do does did doing can could will would
    shall should may might must need needs needed lacks lack lacking missing meets meet meeting matches fits fit
    fitting covers cover shows show showing brings bring offers offer seems seem looks look appears appear makes
    make made given gives give there here where when what which who whom whose why how overall strong strongly
    weak good great solid clear clearly relevant direct directly partial partially full fully likely unlikely
    possible possibly some several most nearly almost about around over under above below between within without
    with without for from into onto upon of on in at by to up down out off again further once yes none nothing
    default fake answer note notes summary verdict decision result reason reasons because therefore thus hence
    experience experienced skills skill seniority location locations level levels requirement requirements
    required requires require must-have must-haves nice plus bonus key core main primary secondary major minor
    background history track record profile candidate member applicant job posting role position opening vacancy
    title team company employer work works working worked based located living lives relocation relocate
    remote hybrid onsite yes no both neither one two three several multiple mostly mainly largely entirely
    excellent exceptional adequate sufficient insufficient limited little lots plenty enough extensive broad
    deep narrow long short recent current previous prior former past present new old years months weeks
    however moreover furthermore additionally although despite still already even though otherwise instead
    hands-on proven demonstrated demonstrates relevant applicable transferable adjacent comparable similar
    different same other related unrelated local nearby far distant compatible incompatible aligned alignment
    draft published says say said per according valid active formal professional appropriate necessary
    recognised recognized strong_match partial_match no_match knows holds speaks uses leads runs builds manages
    owns sells services teaches cooks delivers ships shipped supports trained studied passed designs covers lets
    loads coordinates attends attended reached closed books earns paid currently already former formerly
    worked working lives living moved moving applying applies seeking wants city level area region asks ask
    apart absent stated listed shown right wrong mentioned noted evident visible missing asked expected wanted
    preferred welcome welcomed"""
COMMON = set(_COMMON_TEXT.split())
# Function words that even in capitals (emphasis: "NOT", "MUST") are no acronym.
FUNCTION_WORDS = {
    "a", "an", "the", "and", "or", "not", "no", "nor", "but", "is", "are", "has", "have", "must", "only", "all", "any",
    "none", "never", "always", "very", "yes", "do", "does", "to", "of", "in", "on", "at", "for", "with", "by", "it",
    "as", "be", "if", "so", "we", "me", "my", "i", "also",
}  # fmt: skip
# Words kept inside a multi-word name ("Bank of America", "Universidade de São Paulo", "Procter & Gamble").
NAME_JOINERS = {"of", "de", "da", "do", "dos", "das", "del", "della", "van", "von", "der", "den", "la", "le", "&",
                "y", "e", "du", "di", "al", "el", "bin", "ter", "zu"}  # fmt: skip
