"""What an uploaded file really is, judged from its bytes alone, and whether it is safe to keep.

The type comes from the content's magic bytes (filetype), never from the file's extension or
the browser's Content-Type. A PDF is opened with pikepdf (qpdf) and its whole object graph is
searched for scripts, launch actions and attachments; an image's size in pixels is read from its
header before Pillow decodes anything. A file that is also another format (a polyglot: a PDF
with a ZIP appended, a PNG carrying HTML) is refused, because some other program may open it
as that other format.
"""

from __future__ import annotations

import mmap
import re
import struct
import unicodedata
from pathlib import Path

import filetype
import pikepdf
from PIL import Image

from domain.errors import DocumentRefused
from domain.values import DOCUMENT_TYPES

Buffer = bytes | mmap.mmap  # the file's content: mapped when inspecting, bytes in tests

# What filetype reports, for the tokens of DOCUMENT_TYPES (APNG, GIF, WebP... are wrong_type).
_TOKENS = {media: token for token, media in DOCUMENT_TYPES.items()}
_LABELS = {"pdf": "PDF", "jpeg": "JPG", "png": "PNG"}

# Anything after a PDF's last %%EOF other than PDF white space is another file riding along.
_PDF_WHITESPACE = b"\x00\t\n\x0c\r "
# Signs of HTML, a script or a ZIP archive near the start of a PDF (where browsers and archive
# tools look).
_PDF_HEAD_FOREIGN = re.compile(rb"(?i:<html|<script)|PK\x03\x04")
# Signs of another format anywhere in an image. Compressed pixel data is close to random, so
# every pattern is long enough that a genuine photo matches by chance about once in 10^5 files
# of 10 MB: a ZIP header only counts with a plausible "version needed" (1.0 to 6.3) after it.
_IMAGE_FOREIGN = re.compile(rb"(?i:<html|<script)|%PDF-|PK\x03\x04[\x0a-\x3f]\x00")

# Action types that run code or start a program; XFA forms and rich media carry scripts of
# their own that no key names, so they count as active content too.
_ACTIVE_KEYS = {"/JavaScript", "/JS", "/Launch", "/XFA", "/RichMedia"}
_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/RichMediaExecute"}

_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ContentInspector:
    """Accepts plain PDFs, JPEGs and PNGs; refuses anything it cannot vouch for."""

    def __init__(self, max_pixels: int = 40_000_000) -> None:
        self.max_pixels = max_pixels

    def inspect(self, path: Path, allowed: tuple[str, ...]) -> str:
        """The detected media type (a value of domain.values.DOCUMENT_TYPES) of the file."""
        guess = filetype.guess(str(path))
        kind = _TOKENS.get(guess.mime) if guess is not None else None
        if kind is None or kind not in allowed:
            types = _list_types(allowed)
            raise DocumentRefused("wrong_type", f"The selected file must be a {types}", types=types)
        # Mapped, not read: the byte checks below need the whole file, and a mapping costs
        # page cache the kernel can reclaim rather than a copy on the heap of each request.
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if kind == "pdf":
                self._check_pdf(path, data)
            else:
                self._check_image(path, data, kind)
        return DOCUMENT_TYPES[kind]

    def check_name(self, name: str) -> str:
        """The original file name, for display only, or DocumentRefused "bad_name"."""
        problem = _name_problem(name)
        if problem:
            raise DocumentRefused("bad_name", f"The file name {problem}")
        return name

    # PDF

    def _check_pdf(self, path: Path, data: Buffer) -> None:
        end = data.rfind(b"%%EOF")
        if end < 0:  # cut short: qpdf would repair it, and show what it guessed
            raise _pdf_malformed()
        if data[end + 5 :].strip(_PDF_WHITESPACE) or data.find(b"%PDF-", 1) >= 0:
            raise _polyglot()
        if _PDF_HEAD_FOREIGN.search(data, 0, 1024):
            raise _polyglot()
        try:
            with pikepdf.open(path) as pdf:
                if pdf.is_encrypted:
                    raise _encrypted()
                active, embedded = _pdf_findings(pdf)
        except pikepdf.PasswordError:
            raise _encrypted() from None
        except pikepdf.PdfError:
            raise _pdf_malformed() from None
        if active:
            raise DocumentRefused(
                "pdf_active_content",
                "The selected file contains active content (JavaScript) and cannot be accepted",
            )
        if embedded:
            raise DocumentRefused(
                "pdf_embedded_files", "The selected PDF has other files attached inside it"
            )

    # Images

    def _check_image(self, path: Path, data: Buffer, kind: str) -> None:
        if kind == "png":
            width, height, end = _png_layout(data)
        else:
            width, height, end = _jpeg_layout(data)
            end = _after_further_pictures(data, end)
        if data[end:] or _IMAGE_FOREIGN.search(data):
            raise _polyglot()
        self._check_pixels(width, height)
        try:
            with Image.open(path, formats=[kind.upper()]) as image:
                self._check_pixels(*image.size)
                image.verify()
            with Image.open(path, formats=[kind.upper()]) as image:
                image.load()  # decodes every pixel: catches damage that verify() does not
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own limit (MAX_IMAGE_PIXELS, untouched: it is process-wide); only reached
            # when max_pixels is set above it, as the header check above refuses first otherwise.
            raise self._too_many_pixels() from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise _image_malformed() from None

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise self._too_many_pixels()

    def _too_many_pixels(self) -> DocumentRefused:
        megapixels = f"{self.max_pixels / 1_000_000:g}"
        return DocumentRefused(
            "image_too_many_pixels",
            f"The selected image must be smaller than {megapixels} megapixels",
            megapixels=megapixels,
        )


def _pdf_findings(pdf: pikepdf.Pdf) -> tuple[bool, bool]:
    """Whether any object of the PDF runs code, and whether any carries an attached file.

    Visits every object in the file, referenced or not, and the direct objects inside them.
    """
    active = embedded = False
    stack: list[pikepdf.Object] = [pdf.trailer, *pdf.objects]
    while stack:
        obj = stack.pop()
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            keys = set(obj.keys())
            if keys & _ACTIVE_KEYS or _name(obj, "/S") in _ACTIVE_ACTIONS:
                active = True
            if {"/EmbeddedFiles", "/EF"} & keys or _name(obj, "/Subtype") == "/FileAttachment":
                embedded = True
            if _name(obj, "/Type") == "/EmbeddedFile":
                embedded = True
            children = [obj.get(key) for key in keys]
        elif isinstance(obj, pikepdf.Array):
            children = list(obj)
        else:
            continue
        # Indirect objects are all in pdf.objects already; only direct containers need visiting
        # here (pikepdf hands out numbers, booleans and null as Python values).
        stack.extend(
            child
            for child in children
            if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect
        )
    return active, embedded


def _name(obj: pikepdf.Object, key: str) -> str | None:
    value = obj.get(key)
    return str(value) if isinstance(value, pikepdf.Name) else None


def _png_layout(data: Buffer) -> tuple[int, int, int]:
    """Width, height and where the IEND chunk ends, walking every chunk and checking its CRC
    position (Pillow checks the CRCs themselves)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise _image_malformed()
    width, height = struct.unpack(">II", data[16:24])
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return width, height, pos
    raise _image_malformed()


def _jpeg_layout(data: Buffer) -> tuple[int, int, int]:
    """Width, height and where the end-of-image marker ends, walking the marker segments and
    the entropy-coded data between them."""
    size: tuple[int, int] | None = None
    pos = 2  # after the start-of-image marker FFD8
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            raise _image_malformed()
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            if size is None:
                raise _image_malformed()
            return size[1], size[0], pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and length >= 7:
            size = struct.unpack(">HH", data[pos + 5 : pos + 9])
        pos += 2 + length
        if marker == 0xDA:  # start of scan: skip the entropy-coded data to the next marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= len(data):
                    raise _image_malformed()
                if data[pos + 1] != 0x00 and not 0xD0 <= data[pos + 1] <= 0xD7:
                    break
                pos += 2
    raise _image_malformed()


def _after_further_pictures(data: Buffer, end: int) -> int:
    """Where a JPEG's data really ends: after the further complete JPEG images that the
    Multi-Picture Format (CIPA DC-007) puts after the first one, as phones' Ultra HDR photos
    (their gain map) and MPO cameras do, and after the fill bytes some cameras pad with.
    Anything else after the end is refused as a polyglot by the caller."""
    while data[end : end + 3] == b"\xff\xd8\xff":
        end += _jpeg_layout(data[end:])[2]
    rest = data[end:]
    return len(data) if rest and not rest.strip(b"\x00\xff") else end


def _name_problem(name: str) -> str | None:
    """Why a client's file name cannot be shown (it is never used as a path), or None."""
    if not name or not name.strip():
        return "is empty"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "contains characters that cannot be shown"
    if len(name) > 255 or len(encoded) > 255:
        return "must be 255 characters or fewer"
    for char in name:
        if char in _BIDI_CONTROLS:
            return "contains a hidden character that changes the direction of the text"
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"}:
            return "contains a control character"
    if "/" in name or "\\" in name:
        return "must not contain / or \\"
    if name in {".", ".."} or name.startswith(".."):
        return 'must not be "." or start with ".."'
    return None


def _list_types(allowed: tuple[str, ...]) -> str:
    labels = [_LABELS.get(kind, kind.upper()) for kind in allowed]
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} or {labels[-1]}"


def _encrypted() -> DocumentRefused:
    return DocumentRefused("pdf_encrypted", "The selected file is password protected")


def _pdf_malformed() -> DocumentRefused:
    return DocumentRefused("pdf_malformed", "The selected PDF is damaged and cannot be opened")


def _image_malformed() -> DocumentRefused:
    return DocumentRefused("image_malformed", "The selected image is damaged and cannot be opened")


def _polyglot() -> DocumentRefused:
    return DocumentRefused(
        "polyglot", "The selected file is not a plain PDF, JPG or PNG: it contains another file"
    )
