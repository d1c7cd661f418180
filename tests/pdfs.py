"""Small PDFs written by hand for the loader tests (no PDF library writes text pages), bombs and scans included."""

from __future__ import annotations

import io
import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], labels_from: int | None = None) -> bytes:
    """A PDF with one text line per item on each page; `labels_from` sets roman page labels."""
    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if labels_from is not None:
        catalog += b" /PageLabels << /Nums [0 << /S /r >> %d << /S /D /St 1 >>] >>" % labels_from
    objects.append(catalog + b" >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, lines in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    return write_pdf(objects)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    """The same PDF encrypted (AES) with `user_password` (may be empty)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_pdf(objects: list[bytes]) -> bytes:
    """A PDF whose objects 1..n are `objects` (1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def shared_content_pdf(content: bytes, pages: int = 1, flate: bool = False, media: str = "0 0 612 792") -> bytes:
    """`pages` pages that all draw the same content stream: thousands of pages for a few KB."""
    font, stream = 3 + pages, 4 + pages
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode()]
    page = (
        f"<< /Type /Page /Parent 2 0 R /MediaBox [{media}] /Contents {stream} 0 R "
        f"/Resources << /Font << /F1 {font} 0 R >> >> >>"
    ).encode()
    objects += [page] * pages
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    flate_filter = b" /Filter /FlateDecode" if flate else b""
    objects.append(b"<< /Length %d%s >>\nstream\n" % (len(content), flate_filter) + content + b"\nendstream")
    return write_pdf(objects)


def deflated(prefix: bytes, unit: bytes, count: int, suffix: bytes = b"") -> bytes:
    """zlib of prefix + unit * count + suffix, compressed piecewise (hundreds of MB never in memory)."""
    compressor = zlib.compressobj(9)
    block = unit * max(1, 1_000_000 // len(unit))
    parts = [compressor.compress(prefix)]
    done = 0
    while done < count:
        take = min(count - done, len(block) // len(unit))
        parts.append(compressor.compress(block[: take * len(unit)]))
        done += take
    parts += [compressor.compress(suffix), compressor.flush()]
    return b"".join(parts)


def image_only_pdf() -> bytes:
    """One page that draws a small grey image and no text: what a scanner produces."""
    content = b"q 200 0 0 200 72 500 cm /Im1 Do Q"
    return write_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /XObject << /Im1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8 "
            b"/Length 4 >>\nstream\n\x00\xff\xff\x00\nendstream",
        ]
    )


def text_op(line: str) -> bytes:
    """A content stream that shows one line of text."""
    return f"BT /F1 11 Tf 72 720 Td ({line}) Tj ET".encode("latin-1")
