"""Every applicant page, message and API error in English and in French.

The pages are walked as a browser would, once per language, and the French rendering of each page
is compared with the English rendering of the same page: no English phrase may show through.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup

from domain.values import DEFAULT_TIME_ZONE
from tests.conftest import CONTACT, ELIGIBILITY, about_you, make_app
from tests.forms import hidden_fields, post_form, text_of
from web.countries import country_name, country_names
from web.times import local_time

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "web" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")

# printf-style conversions as Python's % operator reads them, literal %% included
CONVERSION = re.compile(r"%(?:\(\w+\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]|%")
WORD = re.compile(r"[^\W\d_]{2,}")

CLOSES_AT = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
LATER = {"code": "later", "name": "Pilot 2099", "stream": "inside Canada"}


def catalog() -> Any:
    with PO.open("rb") as source:
        return read_po(source, locale="fr")


@pytest.fixture(scope="module", autouse=True)
def french_catalogue() -> None:
    """`make install` builds the .mo (git-ignored); build it here too when missing or stale."""
    if MO.exists() and MO.stat().st_mtime >= PO.stat().st_mtime:
        return
    partial = MO.with_name(f".messages.{os.getpid()}.mo.tmp")
    with partial.open("wb") as target:
        write_mo(target, catalog())
    partial.replace(MO)


# (a) The catalogue


def test_every_message_has_a_french_translation_with_the_same_placeholders() -> None:
    problems = []
    for message in catalog():
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else message.id
        strings = (message.string,) if isinstance(message.string, str) else message.string
        if message.fuzzy or not all(text.strip() for text in strings):
            problems.append(f"untranslated: {message.id!r}")
        elif any(
            Counter(CONVERSION.findall(ids[-1])) != Counter(CONVERSION.findall(text))
            for text in strings
        ):
            problems.append(f"placeholders differ: {message.id!r} -> {message.string!r}")
    assert problems == []


def test_catalogue_header_is_valid_for_french() -> None:
    # Without its header a catalogue reads as fuzzy, and `pybabel compile` skips it entirely.
    assert '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"' in PO.read_text(encoding="utf-8")
    french = catalog()
    assert not french.fuzzy
    assert french.locale_identifier == "fr"
    assert french.plural_forms == "nplurals=2; plural=(n > 1);"
    assert french.charset.lower() == "utf-8"
    assert [error for _message, errors in french.check() for error in errors] == []


def test_every_string_marked_in_web_is_in_the_french_catalogue() -> None:
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    marked = {
        message if isinstance(message, str) else message[0]
        for _path, _line, message, _comments, _context in extract_from_dir(
            str(ROOT),
            method_map,
            options_map,
            keywords=keywords,
            directory_filter=lambda path: not os.path.basename(path).startswith((".", "_")),
        )
    }
    assert marked, "extraction found nothing: is babel.cfg still right?"
    translated = {
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog()
        if message.id and message.string
    }
    assert sorted(marked - translated) == []


# (b) Every applicant page, in English and in French

# page -> (an English phrase it shows, the French phrase that replaces it, ...more French)
PAGES: dict[str, tuple[str, ...]] = {
    "index": (
        "Apply for permanent residence as a home care worker",
        "Présenter une demande de résidence permanente à titre de travailleur de soins à domicile",
        "Périodes de réception des demandes ouvertes",
        "Nombre de places : 10",
        "Vous avez déjà commencé?",
    ),
    "register": (
        "Step 1 of 3",
        "Étape 1 sur 3",
        "Les renseignements sur votre passeport et votre date de naissance servent à vous identifier.",
        "Pays qui a délivré votre passeport",
        "Enregistrer et revenir plus tard",
    ),
    "register_invalid": (
        "Enter your family name",
        "Entrez votre nom de famille",
        "Il y a un problème",
        "Erreur :",
        "Sélectionnez le pays qui a délivré votre passeport",
        "Entrez votre date de naissance sous forme de date valide, par exemple 1985-04-27",
    ),
    "credentials": (
        "Your access code",
        "Votre code d'accès",
        "Notez-les tous les deux maintenant ou prenez une photo de cette page.",
        "Continuer",
    ),
    "about_you": ("About you", "À propos de vous", "Étape 1 sur 3", "Numéro de passeport"),
    "contact": (
        "How we contact you",
        "Comment communiquer avec vous",
        "Adresse courriel",
        "Incluez l'indicatif de pays, par exemple +63 917 123 4567",
    ),
    "contact_invalid": (
        "Enter your email address in the right format, like name@example.com",
        "Entrez votre adresse courriel dans le bon format, par exemple nom@example.com",
        "Sélectionnez le pays où vous habitez dans la liste",
        "Entrez un numéro de téléphone de 7 à 15 chiffres",
    ),
    "saved": (
        "Your answers are saved",
        "Vos réponses sont enregistrées",
        "sur cet appareil ou sur un autre",
        "Continuer maintenant",
    ),
    "conflict": (
        "changed in another tab",
        "Votre demande a été modifiée dans un autre onglet ou sur un autre appareil",
        "Garder les réponses enregistrées",
    ),
    "review_unfinished": (
        "Not answered",
        "Aucune réponse",
        "Terminez toutes les étapes avant de soumettre votre inscription.",
    ),
    "status_draft": (
        "Not submitted yet",
        "Pas encore soumise",
        "Votre inscription n'est pas encore soumise.",
        "Commencée",
    ),
    "eligibility": (
        "Your eligibility",
        "Votre admissibilité",
        "Aucun résultat de test pour l'instant",
        "NCLC 10 ou plus",
        "Diplôme d'études secondaires",
    ),
    "review": (
        "Check your answers before you submit",
        "Vérifiez vos réponses avant de soumettre votre inscription",
        "Soumettre mon inscription",
        "NCLC 5",
        "Oui",
        "Modifier",
    ),
    "receipt": (
        "First come, first served",
        "Premier arrivé, premier servi",
        "Inscription soumise",
        "Prochaines étapes",
        "vous aurez 28 jours pour téléverser vos documents",
    ),
    "status_submitted": (
        "Your registration is in.",
        "Votre inscription est reçue.",
        "Voir votre accusé de réception",
    ),
    "withdraw": (
        "Withdraw your application",
        "Retirer votre demande",
        "Pourquoi retirez-vous votre demande? (facultatif)",
        "Conserver ma demande",
    ),
    "withdraw_invalid": (
        "Confirm that you want to withdraw",
        "Confirmez que vous voulez retirer votre demande",
    ),
    "status_withdrawn": (
        "You withdrew this application.",
        "Vous avez retiré cette demande.",
        "Retirée",
    ),
    "signed_out": ("You are signed out", "Votre session est fermée"),
    "sign_in": (
        "Sign in to your application",
        "Connectez-vous pour accéder à votre demande",
        "Par exemple, 7K2M-9QXD-4",
        "Code d'accès",
    ),
    "sign_in_invalid": (
        "Enter your reference",
        "Entrez votre numéro de référence",
        "Entrez votre code d'accès",
    ),
    "sign_in_failed": (
        "We could not find an application with that reference and access code.",
        "Nous n'avons trouvé aucune demande correspondant à ce numéro de référence",
    ),
    "unauthorised": (
        "Sign in with your reference and access code to see your application.",
        "Connectez-vous avec votre numéro de référence et votre code d'accès pour consulter",
    ),
    "not_found": ("Page not found.", "Page introuvable.", "Aller à la page d'accueil"),
    "method_not_allowed": (
        "This page cannot be used that way.",
        "Cette page ne peut pas être utilisée de cette façon.",
    ),
    "csrf": ("This form has expired", "Ce formulaire a expiré"),
    "duplicate": (
        "You are already registered in this intake.",
        "Une inscription existe déjà à votre nom pour cette période de réception des demandes.",
    ),
    "credentials_later": (
        "You can close this page.",
        "Vous pouvez fermer cette page.",
        "Continuer plutôt maintenant",
    ),
    "status_after_sign_in": ("Status of your application", "État de votre demande", "Retirée"),
}

COMMON_FRENCH = (
    "Passer au contenu principal",
    "Vos réponses sont enregistrées chaque fois que vous sélectionnez un bouton d'enregistrement.",
)

COUNTRY_SELECTS = ("passport_country", "country_of_residence")


class Walk:
    """The pages one applicant sees, by name, and the data that is theirs (never translated)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.data: set[str] = set()


def journey(app: Any, n: int, *, lang: str | None = None, accept: str | None = None) -> Walk:
    """Every applicant page, as one browser walks them; ?lang is given on the first page only."""
    client = app.test_client()
    if accept:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    walk = Walk()

    def keep(name: str, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, (name, response.status_code, response.text[:500])
        walk.pages[name] = response.text
        return response

    def redirected(response: Any, ending: str) -> str:
        assert response.status_code == 302, response.text[:500]
        assert response.headers["Location"].split("?")[0].endswith(ending)
        return str(response.headers["Location"])

    keep("index", client.get(f"/?lang={lang}" if lang else "/"))
    keep("register", client.get("/intakes/test/register"))
    keep(
        "register_invalid",
        post_form(
            client,
            "/intakes/test/register",
            {"family_name": "", "date_of_birth": "27/04/1985", "passport_number": "?"},
        ),
        422,
    )
    done = post_form(client, "/intakes/test/register", {**about_you(n), "action": "continue"})
    credentials = keep("credentials", client.get(redirected(done, "/application/credentials")))
    reference = text_of(credentials.text, "reference")
    access_code = text_of(credentials.text, "access-code")

    keep("about_you", client.get("/application/steps/about_you"))
    old_tab = keep("contact", client.get("/application/steps/contact"))
    keep(
        "contact_invalid",
        client.post(
            "/application/steps/contact",
            data={
                **hidden_fields(old_tab.text),
                "email": "not-an-email",
                "phone": "12",
                "country_of_residence": "XX",
            },
        ),
        422,
    )
    later = post_form(client, "/application/steps/contact", {**CONTACT, "action": "later"})
    keep("saved", client.get(redirected(later, "/application/saved")))
    keep(
        "conflict",
        client.post(
            "/application/steps/contact",
            data={**hidden_fields(old_tab.text), **CONTACT, "email": "other@example.org"},
        ),
        409,
    )
    keep("review_unfinished", client.get("/application/review"))
    keep("status_draft", client.get("/application/status"))
    keep("eligibility", client.get("/application/steps/eligibility"))
    finished = post_form(
        client, "/application/steps/eligibility", {**ELIGIBILITY, "action": "continue"}
    )
    review = keep("review", client.get(redirected(finished, "/application/review")))
    submitted = client.post("/application/submit", data=hidden_fields(review.text))
    keep("receipt", client.get(redirected(submitted, "/application/receipt")))
    keep("status_submitted", client.get("/application/status"))
    keep("withdraw", client.get("/application/withdraw"))
    keep("withdraw_invalid", post_form(client, "/application/withdraw", {"reason": ""}), 422)
    withdrawn = post_form(client, "/application/withdraw", {"confirm": "yes", "reason": ""})
    status = keep("status_withdrawn", client.get(redirected(withdrawn, "/application/status")))

    signed_out = client.post("/sign-out", data=hidden_fields(status.text))
    keep("signed_out", client.get(redirected(signed_out, "/signed-out")))
    keep("sign_in", client.get("/sign-in"))
    keep(
        "sign_in_invalid", post_form(client, "/sign-in", {"reference": "", "access_code": ""}), 422
    )
    keep(
        "sign_in_failed",
        post_form(client, "/sign-in", {"reference": reference, "access_code": "WRONG-CODE-1"}),
        401,
    )
    keep("unauthorised", client.get("/application/status"), 401)
    keep("not_found", client.get("/no-such-page"), 404)
    keep("method_not_allowed", client.get("/sign-out"), 405)
    keep(
        "csrf",
        client.post("/sign-in", data={"reference": reference, "access_code": access_code}),
        400,
    )
    keep("duplicate", post_form(client, "/intakes/test/register", about_you(n)), 409)

    other = about_you(n + 100)
    again = post_form(client, "/intakes/test/register", {**other, "action": "later"})
    second = keep("credentials_later", client.get(redirected(again, "/application/credentials")))
    walk.data |= {text_of(second.text, "reference"), text_of(second.text, "access-code")}
    signed_out = client.post("/sign-out", data=hidden_fields(second.text))
    redirected(signed_out, "/signed-out")

    signed_in = post_form(client, "/sign-in", {"reference": reference, "access_code": access_code})
    redirected(signed_in, "/application")
    keep("status_after_sign_in", client.get(signed_in.headers["Location"], follow_redirects=True))

    walk.data |= {reference, access_code}
    walk.data |= {str(v) for v in [*about_you(n).values(), *other.values(), *CONTACT.values()]}
    walk.data.add("other@example.org")  # typed on the stale page, shown back on the conflict page
    return walk


@pytest.fixture(scope="module")
def walks(tmp_path_factory: Any, french_catalogue: None) -> Iterator[dict[str, Walk]]:
    """One app; the same journey in English, in French chosen by ?lang=fr, and by the browser."""
    data = tmp_path_factory.mktemp("languages") / "data"
    app = make_app({"CAREPATH_DATA_DIR": str(data), "CAREPATH_SECRET": "l" * 40})
    registry = app.extensions["carepath.registry"]
    try:
        registry.define_intake(
            **LATER, capacity=5, policy="lottery", closes_at=CLOSES_AT, actor="test"
        )
        registry.open_intake(LATER["code"], actor="test")
        yield {
            "en": journey(app, 1),
            "fr": journey(app, 2, lang="fr"),
            "fr-browser": journey(app, 3, accept="fr-CA,fr;q=0.9,en;q=0.5"),
        }
    finally:
        registry.close()


def proper_nouns() -> set[str]:
    """Text that is the same in both languages on purpose: the brand, intakes, countries."""
    nouns = {"carepath", "Test intake", "outside"}
    nouns |= {LATER["name"], LATER["stream"]}
    for code in ("PH", "CA"):
        nouns |= {country_name(code, "en"), country_name(code, "fr")}
    return nouns


def normalise(text: str) -> str:
    return " ".join(text.split())


def visible_text(html: str) -> list[str]:
    """What a person sees or hears: text nodes and accessible names.

    Left out: the language switch and the country lists (CLDR names, checked on their own).
    """
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "template"]):
        hidden.decompose()
    for switch in soup.find_all("a", hreflang=True):  # names each language in itself
        switch.decompose()
    for name in COUNTRY_SELECTS:
        for select in soup.find_all("select", id=name):
            select.decompose()
    texts = list(soup.stripped_strings)
    for attribute in ("aria-label", "title", "alt", "placeholder"):
        texts += [str(tag[attribute]) for tag in soup.find_all(attrs={attribute: True})]
    return [normalise(text) for text in texts]


def phrases(html: str, data: set[str]) -> set[str]:
    """The page's text cut at separators and at personal or proper data, kept if it has words."""
    data_pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(data, key=len, reverse=True))) + r")(?!\w)"
    )
    out = set()
    for text in visible_text(html):
        for part in re.split(r" [·–] |\x00", data_pattern.sub("\x00", text)):
            part = part.strip(" .,:;!?()«»")
            if WORD.search(part):
                out.add(part)
    return out


def english_leaks(english: str, french: str, data: set[str]) -> set[str]:
    """English phrases of the English page that are still in the French page."""
    french_phrases = phrases(french, data)
    french_text = "\n".join(french_phrases)
    return {
        phrase
        for phrase in phrases(english, data)
        if phrase in french_phrases or (len(phrase.split()) > 1 and phrase in french_text)
    }


def html_lang(html: str) -> str:
    return str(BeautifulSoup(html, "html.parser").html["lang"])


def test_every_page_is_walked_in_every_language(walks: dict[str, Walk]) -> None:
    for walk in walks.values():
        assert set(walk.pages) == set(PAGES)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_english_page_is_in_english(walks: dict[str, Walk], page: str) -> None:
    html = walks["en"].pages[page]
    assert html_lang(html) == "en"
    assert PAGES[page][0] in normalise(BeautifulSoup(html, "html.parser").get_text(" "))
    switch = BeautifulSoup(html, "html.parser").find("a", hreflang="fr")
    assert switch is not None
    assert switch.get_text(strip=True) == "Français"


@pytest.mark.parametrize("way", ["fr", "fr-browser"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_french_page_is_in_french_with_no_english_left(
    walks: dict[str, Walk], page: str, way: str
) -> None:
    english, french = walks["en"], walks[way]
    html = french.pages[page]
    text = normalise(BeautifulSoup(html, "html.parser").get_text(" "))

    assert html_lang(html) == "fr"
    for phrase in (*PAGES[page][1:], *COMMON_FRENCH):
        assert phrase in text, f"{phrase!r} not on the French {page} page"
    assert PAGES[page][0] not in text
    switch = BeautifulSoup(html, "html.parser").find("a", hreflang="en")
    assert switch is not None
    assert switch["lang"] == "en"

    data = proper_nouns() | english.data | french.data
    assert english_leaks(english.pages[page], html, data) == set()


def test_dates_and_country_names_follow_the_language(walks: dict[str, Walk]) -> None:
    english = normalise(walks["en"].pages["index"])
    french = normalise(walks["fr"].pages["index"])
    # in the intake's zone (the default, Toronto), the zone named in the page's language
    assert f"Closes {normalise(local_time(CLOSES_AT, DEFAULT_TIME_ZONE, 'en'))}" in english
    assert "Eastern Standard Time" in english
    assert (
        f"Date de clôture : {normalise(local_time(CLOSES_AT, DEFAULT_TIME_ZONE, 'fr'))}" in french
    )
    assert "heure normale de l’Est" in french
    assert "UTC" not in english
    assert "UTC" not in french

    for way in ("fr", "fr-browser"):
        soup = BeautifulSoup(walks[way].pages["register"], "html.parser")
        options = {
            o["value"]: o.get_text(strip=True) for o in soup.select("#passport_country option")
        }
        assert options["DE"] == "Allemagne"
        assert options == {"": "Sélectionner", **dict(country_names("fr"))}
    soup = BeautifulSoup(walks["en"].pages["register"], "html.parser")
    assert soup.select_one("#passport_country option[value=DE]").get_text() == "Germany"


def test_the_rate_limit_page_is_translated(tmp_path: Any) -> None:
    env = {"CAREPATH_DATA_DIR": str(tmp_path / "data"), "CAREPATH_SECRET": "r" * 40}
    app = make_app(env, RATELIMIT_ENABLED=True, RATELIMIT_SIGNIN="1 per minute")
    try:
        english, french = app.test_client(), app.test_client()
        french.get("/?lang=fr")
        wrong = {"reference": "7K2M-9QXD-4", "access_code": "WRONG-CODE-1"}
        assert post_form(english, "/sign-in", wrong).status_code == 401
        refused_en = post_form(english, "/sign-in", wrong)
        refused_fr = post_form(french, "/sign-in", wrong)
    finally:
        app.extensions["carepath.registry"].close()

    assert (refused_en.status_code, refused_fr.status_code) == (429, 429)
    assert "Too many attempts from your connection." in refused_en.text
    assert html_lang(refused_fr.text) == "fr"
    assert "Trop de tentatives à partir de votre connexion." in refused_fr.text
    assert english_leaks(refused_en.text, refused_fr.text, proper_nouns()) == set()


def test_a_language_chosen_with_lang_is_remembered_over_the_browser_language(client: Any) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr-CA,fr;q=0.9"
    assert html_lang(client.get("/").text) == "fr"
    assert html_lang(client.get("/?lang=en").text) == "en"
    assert html_lang(client.get("/sign-in").text) == "en"
    assert html_lang(client.get("/no-such-page?lang=fr").text) == "fr"
    assert html_lang(client.get("/sign-in").text) == "fr"
    assert html_lang(client.get("/?lang=de").text) == "fr"  # an unknown language changes nothing


# (c) The language is recorded on the case


def test_saving_a_step_in_french_records_french_on_the_case(app: Any, client: Any) -> None:
    registry = app.extensions["carepath.registry"]
    done = post_form(client, "/intakes/test/register", {**about_you(5), "action": "continue"})
    credentials = client.get(done.headers["Location"])
    case_id = registry.sign_in(
        text_of(credentials.text, "reference"), text_of(credentials.text, "access-code")
    )
    assert registry.get_case(case_id).language == "en"

    page = client.get("/application/steps/contact?lang=fr")
    assert html_lang(page.text) == "fr"
    saved = client.post(
        "/application/steps/contact",
        data={**hidden_fields(page.text), **CONTACT, "action": "continue"},
    )
    assert saved.status_code == 302
    assert registry.get_case(case_id).language == "fr"

    page = client.get("/application/steps/eligibility?lang=en")
    client.post(
        "/application/steps/eligibility",
        data={**hidden_fields(page.text), **ELIGIBILITY, "action": "continue"},
    )
    assert registry.get_case(case_id).language == "en"


def test_registering_over_the_api_in_french_records_french(app: Any, client: Any) -> None:
    registry = app.extensions["carepath.registry"]
    registered = client.post(
        "/api/v1/intakes/test/registrations",
        json=about_you(6),
        headers={"Idempotency-Key": secrets.token_urlsafe(24), "Accept-Language": "fr"},
    )
    assert registered.status_code == 201, registered.json
    case_id = registry.sign_in(registered.json["reference"], registered.json["access_code"])
    assert registry.get_case(case_id).language == "fr"


# (d) JSON API messages


def api_errors(client: Any, language: str) -> dict[str, Any]:
    """The API's error answers to a set of bad requests, made in the given language."""

    def headers(with_key: bool = True) -> dict[str, str]:
        out = {"Accept-Language": language}
        if with_key:
            out["Idempotency-Key"] = secrets.token_urlsafe(24)
        return out

    register = "/api/v1/intakes/test/registrations"
    answers: dict[str, Any] = {}
    answers["register"] = client.post(
        register,
        json={**about_you(9), "family_name": "", "date_of_birth": "1985-13-40", "colour": "red"},
        headers=headers(),
    )
    answers["no_key"] = client.post(register, json=about_you(9), headers=headers(False))
    answers["not_an_object"] = client.post(register, json=[1, 2], headers=headers())
    answers["not_json"] = client.post(register, data="x", headers=headers())
    answers["sign_in"] = client.post(
        "/api/v1/session",
        json={"reference": "7K2M-9QXD-4", "access_code": "WRONG-CODE-1"},
        headers=headers(),
    )
    answers["no_case"] = client.get("/api/v1/case", headers=headers())
    answers["no_intake"] = client.get("/api/v1/intakes/nope", headers=headers())
    answers["not_found"] = client.get("/api/v1/nothing-here", headers=headers())

    made = client.post(register, json=about_you(10 if language == "en" else 11), headers=headers())
    assert made.status_code == 201, made.json
    answers["step_version"] = client.put(
        "/api/v1/case/steps/contact",
        json={"version": None, "answers": CONTACT},
        headers=headers(),
    )
    answers["step_answers"] = client.put(
        "/api/v1/case/steps/contact",
        json={"version": 1, "answers": {**CONTACT, "email": "nope", "fax": "1"}},
        headers=headers(),
    )
    answers["stale"] = client.put(
        "/api/v1/case/steps/contact",
        json={"version": 7, "answers": CONTACT},
        headers=headers(),
    )
    return {name: (response.status_code, response.json) for name, response in answers.items()}


def messages_of(body: dict[str, Any]) -> list[str]:
    found = [body["error"]]
    for messages in body.get("errors", {}).values():
        found += messages
    return found


def test_api_validation_messages_follow_accept_language(app: Any) -> None:
    english = api_errors(app.test_client(), "en")
    french = api_errors(app.test_client(), "fr")

    assert {name: status for name, (status, _) in english.items()} == {
        name: status for name, (status, _) in french.items()
    }
    for name, (_, body) in french.items():
        en_body = english[name][1]
        assert set(body.get("errors", {})) == set(en_body.get("errors", {})), name
        leaked = set(messages_of(body)) & set(messages_of(en_body))
        assert leaked == set(), (name, leaked)

    status, body = french["register"]
    assert status == 422
    assert body["error"] == "Certains renseignements ne sont pas valides."
    assert body["errors"]["family_name"] == ["Entrez votre nom de famille"]
    assert body["errors"]["date_of_birth"] == [
        "Entrez votre date de naissance sous forme de date valide, par exemple 1985-04-27"
    ]
    assert body["errors"]["colour"] == ["Champ inconnu."]
    assert french["no_key"][1]["errors"]["Idempotency-Key"][0].startswith(
        "Envoyez un en-tête Idempotency-Key de 16 à 64 lettres"
    )
    assert french["not_an_object"][1]["errors"]["_body"] == [
        "Le corps de la requête doit être un objet JSON."
    ]
    assert french["not_json"][1]["error"].startswith("Envoyez la requête en JSON")
    assert french["sign_in"][1]["error"].startswith("Nous n'avons trouvé aucune demande")
    assert french["no_case"][1]["error"].startswith("Connectez-vous avec votre numéro de référence")
    assert french["no_intake"][1]["error"] == (
        "Il n'existe aucune période de réception des demandes avec ce code."
    )
    assert french["not_found"][1]["error"].startswith("Page introuvable.")
    assert french["step_version"][1]["errors"] == {
        "version": ["Indiquez la version du dossier que vous modifiez"]
    }
    step = french["step_answers"][1]["errors"]
    assert step["answers.email"] == [
        "Entrez votre adresse courriel dans le bon format, par exemple nom@example.com"
    ]
    assert step["answers.fax"] == ["Champ inconnu."]
    assert french["stale"][0] == 409
    assert french["stale"][1]["error"].startswith("Votre demande a été modifiée")
