"""The one CSV writer of the product: every CSV it writes opens in a spreadsheet as data, never as formulas.

Excel, LibreOffice Calc and Google Sheets run a cell that starts with "=", "+", "-" or "@" as a
formula (`=HYPERLINK(…)` to send what sits beside it away, DDE to start a program), and a tab or
a carriage return in front does not stop them. So, as OWASP's CSV injection rule says, a text
cell starting with one of these gets a leading apostrophe, the spreadsheets' mark for text that
they do not show; a line feed too, and the full-width forms of the four signs, which East Asian
input methods type and some spreadsheets take for the signs themselves (an apostrophe costs
nothing where they do not). Numbers are written as numbers: -3 stays the number -3.

Not defusedcsv, the maintained library for this: it lets cells starting with a tab or a carriage
return through, and in the cells it escapes it rewrites every "|" as "\\|", changing the data.
"""
import csv
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def text_cell(text: str) -> str:
    """`text` as a spreadsheet must read it: as the same text, never as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value):
    """One cell: int, float and Decimal as they are (numbers); None empty; anything else as safe text."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    return "" if value is None else text_cell(str(value))


class Writer:
    """`csv.writer` over RFC 4180 (CRLF line ends, so a lone CR or LF inside a cell is quoted, not a new
    row), every cell passed through `cell`."""

    def __init__(self, file):
        self._writer = csv.writer(file, lineterminator="\r\n")

    def writerow(self, row) -> None:
        self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
