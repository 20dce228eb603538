"""Pattern recognizers: every surface form the real-world set showed us we missed, each context
rule, each validator, and the hard negatives that must stay (no spaCy, no Faker: fast)."""

from __future__ import annotations

import pytest

from nlpforge.corpus.pii import ENTITIES, find_pii, vin_ok


def _found(text: str) -> list[tuple[str, str]]:
    return [(s.entity, s.text) for s in find_pii(text, ENTITIES)]


@pytest.mark.parametrize(
    "text,entity,value",
    [
        # dates, times, ages
        ("HPI: 74-year-old M presents", "DATE_TIME", "74-year-old"),
        ("a 68-yr-old veteran", "DATE_TIME", "68-yr-old"),
        ("She is 59 years of age.", "DATE_TIME", "59 years of age"),
        ("43 yo female", "DATE_TIME", "43 yo"),
        ("my son is 58yo", "DATE_TIME", "58yo"),
        ("patient is 57 y.o. today", "DATE_TIME", "57 y.o."),
        ("75 y/o patient", "DATE_TIME", "75 y/o"),
        ("rep: sure age 47", "DATE_TIME", "47"),
        ("a man aged 93, no history", "DATE_TIME", "93"),
        ("Meds given at 04:41.", "DATE_TIME", "04:41"),
        ("shift starts 09:45:26", "DATE_TIME", "09:45:26"),
        ("Call me after 2 PM please", "DATE_TIME", "2 PM"),
        ("we open at 9:20 a.m. sharp", "DATE_TIME", "9:20 a.m."),
        ("[11:37AM] visitor: hi", "DATE_TIME", "11:37AM"),
        ("vaccinated on 11.11.2020", "DATE_TIME", "11.11.2020"),
        ("Member since April 2021.", "DATE_TIME", "April 2021"),
        ("Diagnosed in 10/2026.", "DATE_TIME", "10/2026"),
        ("The outage on Jan 27th lasted", "DATE_TIME", "Jan 27th"),
        ("due Nov. 28.", "DATE_TIME", "Nov. 28"),
        ("Last updated 22-Feb-2022.", "DATE_TIME", "22-Feb-2022"),
        ("Admission date: Jan. 24, 2022.", "DATE_TIME", "Jan. 24, 2022"),
        ("Apr  3 19:17:36 DEBUG [nginx] started", "DATE_TIME", "Apr  3 19:17:36"),
        ("2019-09-18 16:03:37,421 INFO [api] ok", "DATE_TIME", "2019-09-18 16:03:37,421"),
        ("Last seen 2025-07-31T03:01:16.088Z.", "DATE_TIME", "2025-07-31T03:01:16.088Z"),
        ("at=2020-03-07T16:38:07+02:00 ok", "DATE_TIME", "2020-03-07T16:38:07+02:00"),
        ("2022/05/03 23:53:30 INFO [api]", "DATE_TIME", "2022/05/03 23:53:30"),
        ("can we meet Tuesday, January 18, 2026", "DATE_TIME", "Tuesday, January 18, 2026"),
        ("The clinic is closed Sat, 10 Sep 2020.", "DATE_TIME", "Sat, 10 Sep 2020"),
        ("Submitted 05/10/2018 7:22 PM", "DATE_TIME", "05/10/2018 7:22 PM"),
        ("Follow-up on 4/2 at the clinic", "DATE_TIME", "4/2"),
        # phones
        ("Please call back at 1-477-291-5640.", "PHONE_NUMBER", "1-477-291-5640"),
        ("The pharmacy number is 1 (269) 869-5142", "PHONE_NUMBER", "1 (269) 869-5142"),
        ("please call back at 3206882585", "PHONE_NUMBER", "3206882585"),
        ("(m) 8085435362", "PHONE_NUMBER", "8085435362"),
        ("you can reach me at +13689921576", "PHONE_NUMBER", "+13689921576"),
        ("Office: (989)318-4039 x 292 today", "PHONE_NUMBER", "(989)318-4039"),
        ("Phone (intl): +49 30 79293906", "PHONE_NUMBER", "+49 30 79293906"),
        # SSNs
        ("My social security number is 328633827", "US_SSN", "328633827"),
        ("SSN=745924985 stopped", "US_SSN", "745924985"),
        ("Soc Sec # 297 30 0454.", "US_SSN", "297 30 0454"),
        # IPs
        ("Upstream 10.227.199.204:5432 timed out", "IP_ADDRESS", "10.227.199.204"),
        ("deny from 132.23.33.208/32", "IP_ADDRESS", "132.23.33.208/32"),
        ("connect to [2607:99a7:bc33::eb:147e:64da]:443 failed", "IP_ADDRESS", "2607:99a7:bc33::eb:147e:64da"),
        ("The router advertises fe80::.", "IP_ADDRESS", "fe80::"),
        ("client ip ::FFFF:162.193.69.40", "IP_ADDRESS", "::FFFF:162.193.69.40"),
        ("nat64 64:ff9b::92.122.80.116 ok", "IP_ADDRESS", "64:ff9b::92.122.80.116"),
        ("Allow 2001:db8::/32 in the firewall", "IP_ADDRESS", "2001:db8::/32"),
        ("src=fe80::4a93:e1:5f7a:5d26%ens192 up", "IP_ADDRESS", "fe80::4a93:e1:5f7a:5d26%ens192"),
        ("Src=::7824:bc32? ok", "IP_ADDRESS", "::7824:bc32"),
        # URLs
        ("I bought it on rosario.com.au.", "URL", "rosario.com.au"),
        ("Link: kim.info/help?q=1.", "URL", "kim.info/help?q=1"),
        ("[Click here](https://docs.sanford.org?id=62300)", "URL", "https://docs.sanford.org?id=62300"),
        ("Unsubscribe: <https://portal.smith.org/login>", "URL", "https://portal.smith.org/login"),
        ("Check the FAQ (https://gray.com/category/tags/search).", "URL", "https://gray.com/category/tags/search"),
        # e-mail, card, IBAN
        ("mail o'brien.k@example.ie today", "EMAIL_ADDRESS", "o'brien.k@example.ie"),
        ("It says 'hughesjohn@moreno-young.com' is not registered", "EMAIL_ADDRESS", "hughesjohn@moreno-young.com"),
        ("Use card 3715 169734 40585 for it", "CREDIT_CARD", "3715 169734 40585"),
        ("Refund to BE68 5390 0754 7034 please", "IBAN_CODE", "BE68 5390 0754 7034"),
        ("IBAN BE68539007547034.", "IBAN_CODE", "BE68539007547034"),
        ("IBAN: PL80916998219794649302210313 ok", "IBAN_CODE", "PL80916998219794649302210313"),
        # HIPAA identifiers by context word
        ("MRN: 00074014. My son", "MEDICAL_RECORD_NUMBER", "00074014"),
        ("MR# 722-93-62?", "MEDICAL_RECORD_NUMBER", "722-93-62"),
        ("Chart #6627371 updated", "MEDICAL_RECORD_NUMBER", "6627371"),
        ("Member #: 64320054624.", "HEALTH_PLAN_ID", "64320054624"),
        ('msg="Medicare MBI 3U38-W13-TH99"', "HEALTH_PLAN_ID", "3U38-W13-TH99"),
        ("user: acct # 819624922556", "ACCOUNT_NUMBER", "819624922556"),
        ("RN license K57268.", "LICENSE_NUMBER", "K57268"),
        ("DEA # BO7553452.", "LICENSE_NUMBER", "BO7553452"),
        ("support: dl R970-5764-7368", "LICENSE_NUMBER", "R970-5764-7368"),
        ("A silver sedan, plate DON-3152.", "VEHICLE_ID", "DON-3152"),
        ("License plate TQB 4399. The issue", "VEHICLE_ID", "TQB 4399"),
        ("Vin# 1M8GDM9AXKP042788 on file", "VEHICLE_ID", "1M8GDM9AXKP042788"),
        ("phone IMEI 490154203237518 reported stolen", "DEVICE_ID", "490154203237518"),
        ("IMEI 49-015420-323751-8 reported stolen", "DEVICE_ID", "49-015420-323751-8"),
        ("Device MAC: 58:AE:F8:7B:E9:E4", "DEVICE_ID", "58:AE:F8:7B:E9:E4"),
        ("Pump serial # SN-BPERCBWR", "DEVICE_ID", "SN-BPERCBWR"),
    ],
)
def test_forms_are_found_with_exact_spans(text: str, entity: str, value: str) -> None:
    assert (entity, value) in _found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Catalog item 023-086-7851 is discontinued",  # area code 0xx: not a NANP number
        "part no. 062-660-3525 is discontinued",
        "Tracking number 8928229857461932.",  # fails Luhn
        "Config has a typo: 809.226.65.147.",  # octet > 255
        "correlation id 15cc9e1d-8ac9-4762-9334-518f7af1f5a6",
        "Running version v2.10.1, windows build 7.3",
        "SKU WH-5614XM5-BLK is out; order PO-02364 shipped",
        "Dose 0.2 mg/kg, BP 164/64, HR 91 bpm, 38.9 °C",
        "Balance due: $9,319.36. Card ****4238, last four 0675",
        "Timeout after 431 ms; CPU at 98.51%",
        "It listens on port 8443. The API returned 503.",
        "glucose 208 mg/dL",
        "Room 928, bed 6D, queue item 85250, build #50678",
        "Sha256:236c8f985057 and checksum 0e3aae1f2e93",
        "Failed with 0x5FCFA84F and ERR_477",
        "ratio 1:2:3 and score 45:99",
        "Account email changed to the new one",
        "the CI job number 2065551234",  # ten digits after an id word, not a phone cue
    ],
)
def test_hard_negatives_stay(text: str) -> None:
    assert _found(text) == []


def test_imei_is_a_device_id_not_a_card() -> None:
    # Luhn-valid 15 digits: a card only with an issuer prefix of that length (Amex 34/37)
    assert _found("phone IMEI 352099008511681 stolen") == [("DEVICE_ID", "352099008511681")]
    assert _found("reference 352099008511681") == []
    assert _found("card 378282246310005 on file") == [("CREDIT_CARD", "378282246310005")]


def test_bare_digits_need_their_context_word() -> None:
    assert _found("call 3206882585") == [("PHONE_NUMBER", "3206882585")]
    assert _found("batch 3206882585") == []
    assert _found("ssn 328633827") == [("US_SSN", "328633827")]
    assert _found("batch 328633827") == []
    assert _found("Delivery 2024 tel 020 7946 0958") == [("PHONE_NUMBER", "020 7946 0958")]
    assert _found("part 020 7946 0958") == []


def test_vin_check_digit() -> None:
    assert vin_ok("1M8GDM9AXKP042788") and not vin_ok("1M8GDM9A1KP042788")
    assert _found("ref 1M8GDM9AXKP042788") == [("VEHICLE_ID", "1M8GDM9AXKP042788")]  # valid check digit: no cue needed
    assert _found("ref 1M8GDM9A1KP042788") == []
    assert _found("vin 1M8GDM9A1KP042788") == [("VEHICLE_ID", "1M8GDM9A1KP042788")]  # a cue: non-NA VINs have no check digit
