"""The one CSV writer: text that a spreadsheet would run as a formula is written as text; numbers stay numbers."""
import csv
import io
from decimal import Decimal

from config import spreadsheets


def written(*row) -> str:
    text = io.StringIO()
    spreadsheets.Writer(text).writerow(row)
    return text.getvalue()


def test_text_that_starts_like_a_formula_gets_the_text_mark():
    payloads = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(1+1)", "\t=1", "\r=1", "\n=1",
                "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(1)", "-3"]
    [row] = csv.reader(io.StringIO(written(*payloads), newline=""))
    assert row == ["'" + payload for payload in payloads]


def test_numbers_and_plain_text_are_written_as_they_are():
    assert written(-3, 2.5, Decimal("-1.50"), 0, None, "Sales", "a=b", "") == "-3,2.5,-1.50,0,,Sales,a=b,\r\n"


def test_a_carriage_return_inside_a_cell_does_not_start_a_row():
    assert list(csv.reader(io.StringIO(written("a\rb", "c\nd"), newline=""))) == [["a\rb", "c\nd"]]
