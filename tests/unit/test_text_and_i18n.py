import pytest

from sifc.errors import NotFound
from sifc.i18n import pick_language
from sifc.settings import Settings, normalize_database_url
from sifc.text import search_form, slug


@pytest.mark.parametrize(("left", "right"), [
    ("Mont-Rolland", "MONT ROLLAND"),
    ("Mont Rolland", "mont  rolland"),
    ("Dindéfélo", "DINDEFELO"),
    ("Thiès", "thies"),
    ("Patte d'Oie", "patte d oie"),
    ("Kédougou", "KEDOUGOU"),
])
def test_search_form_ignores_accents_case_and_hyphens(left, right):
    assert search_form(left) == search_form(right)


@pytest.mark.parametrize(("left", "right"), [
    ("Mont Roland", "Mont-Rolland"),
    ("Sabadola", "Sabodala"),
    ("Dindefello", "Dindéfélo"),
])
def test_true_variants_do_not_fold_together(left, right):
    assert search_form(left) != search_form(right)


def test_slug_is_ascii_and_stable():
    assert slug("Mont Rolland") == "mont-rolland"
    assert slug("Médina Baffé") == "medina-baffe"
    assert slug("Patte d'Oie") == "patte-d-oie"


@pytest.mark.parametrize(("header", "expected"), [
    (None, "fr"), ("", "fr"), ("en", "en"), ("en-US,en;q=0.9", "en"), ("fr-SN", "fr"),
    ("de, en;q=0.5", "en"), ("de", "fr"), ("fr;q=0.2, en;q=0.8", "en"), ("*", "fr"),
])
def test_language_negotiation(header, expected):
    assert pick_language(header) == expected


def test_errors_speak_both_languages():
    error = NotFound("territory.not_found", level="commune", code="X")
    assert error.message("fr") == "Aucun(e) commune avec le code « X »."
    assert error.message("en") == "No commune with code 'X'."


def test_libpq_urls_get_the_psycopg_driver():
    assert normalize_database_url("postgresql://u:p@h:5/d").startswith("postgresql+psycopg://u:p@")
    assert normalize_database_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_a_secret_written_in_the_source_is_refused_in_every_environment():
    written_here = "a-real-secret-value-of-32-characters-at-least"  # in this tracked file: anyone can read it
    for environment in ("development", "test", "production"):
        with pytest.raises(ValueError, match="SIFC_SECRET_KEY appears in a published file"):
            Settings(environment=environment, secret_key=written_here)
    assert Settings(environment="production").secret_key is None  # the generated key file signs


@pytest.mark.parametrize("url", ["ftp://tiles.example.sn/{z}/{x}/{y}.png", "https://tiles.example.sn/{z}/{x}.png",
                                 "tiles.example.sn/{z}/{x}/{y}.png"])
def test_a_base_layer_must_be_an_http_xyz_template(url):
    with pytest.raises(ValueError, match="SIFC_BASEMAP_URL"):
        Settings(basemap_url=url)


def test_a_blank_base_layer_is_none_and_a_good_one_is_kept():
    assert Settings(basemap_url="  ").basemap_url is None
    good = "https://tiles.example.sn/{z}/{x}/{y}.png"
    assert Settings(basemap_url=f" {good} ").basemap_url == good


def test_admin_url_defaults_to_local_superuser_on_same_database():
    settings = Settings(database_url="postgresql://app:pw@db.example:5433/land",
                        admin_database_url=None)
    assert settings.admin_url.username == "postgres"
    assert settings.admin_url.password is None
    assert (settings.admin_url.host, settings.admin_url.port, settings.admin_url.database) == (
        "db.example", 5433, "land")
