"""The audio a transcription request carries: its size, its type and its duration, each checked
against a limit named in the error.

- Size: at most MAX_AUDIO_BYTES (25 MB, OpenAI's own limit on audio/transcriptions): 413 `file_too_large`.
- Type: the file name's extension must be one OpenAI takes (AUDIO_TYPES), and a content type, when
  one is given (other than application/octet-stream), must be one of that extension's: else 415
  `unsupported_file_type`. A file without a usable name is named from its content type.
- Duration: read from the file's headers with mutagen (mp3, m4a/mp4, ogg/oga, flac, wav). For a file
  mutagen cannot read (webm, a damaged header) it is estimated from the size at ESTIMATE_BYTES_PER_SECOND
  (16 kbit/s, the low end of compressed speech), which overestimates any file of a higher bitrate:
  the reservation then covers the call, and the bill uses the duration the upstream reports, up
  to the estimate reserved (a file of a lower bitrate is billed at the estimate).
  At most MAX_AUDIO_SECONDS (an hour): 400 `audio_too_long`.
"""

import io
import math
from dataclasses import dataclass
from pathlib import PurePosixPath

import mutagen

from aihub.adapters.base import MediaFile
from city.errors import ApiError

MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_AUDIO_SECONDS = 3600
ESTIMATE_BYTES_PER_SECOND = 2000

# Extension → the content types a client may send it with (the first is the one City sends upstream).
AUDIO_TYPES: dict[str, tuple[str, ...]] = {
    "flac": ("audio/flac", "audio/x-flac"),
    "m4a": ("audio/mp4", "audio/m4a", "audio/x-m4a"),
    "mp3": ("audio/mpeg", "audio/mp3", "audio/mpga"),
    "mp4": ("audio/mp4", "video/mp4"),
    "mpeg": ("audio/mpeg", "video/mpeg"),
    "mpga": ("audio/mpeg", "audio/mpga"),
    "oga": ("audio/ogg", "application/ogg", "audio/opus"),
    "ogg": ("audio/ogg", "application/ogg", "audio/opus", "video/ogg"),
    "wav": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "webm": ("audio/webm", "video/webm"),
}
UNTYPED = ("", "application/octet-stream", "binary/octet-stream")
EXTENSIONS = ", ".join(AUDIO_TYPES)


@dataclass(frozen=True)
class Audio:
    file: MediaFile
    seconds: float  # measured, or estimated (see `measured`)
    measured: bool

    @property
    def units(self) -> int:
        """Whole seconds, rounded up: what the call reserves and records (a silent file counts as one)."""
        return max(1, math.ceil(self.seconds))


def check_size(size: int, param: str = "file") -> None:
    if size > MAX_AUDIO_BYTES:
        raise ApiError(
            413,
            f"The audio is {size:,} bytes, over the limit of {MAX_AUDIO_BYTES:,} bytes (25 MB); split it or compress it.",
            param=param,
            code="file_too_large",
        )


def typed_file(name: str, data: bytes, content_type: str, param: str = "file") -> MediaFile:
    """The file with a name whose extension says its type, and that type's content type; 415 otherwise."""
    content_type = (content_type or "").split(";")[0].strip().lower()
    extension = PurePosixPath(name or "").suffix.lower().lstrip(".")
    if not extension and content_type not in UNTYPED:
        extension = next((ext for ext, types in AUDIO_TYPES.items() if content_type in types), "")
        name = f"{name or 'audio'}.{extension}" if extension else name
    if extension not in AUDIO_TYPES:
        shown = f"'.{extension}'" if extension else "no extension"
        raise ApiError(
            415,
            f"The audio file has {shown}: send one of {EXTENSIONS}, with a file name that ends in its type.",
            param=param,
            code="unsupported_file_type",
        )
    if content_type not in UNTYPED and content_type not in AUDIO_TYPES[extension]:
        raise ApiError(
            415,
            f"The file is named .{extension} but its content type is '{content_type[:100]}'; send "
            f"{' or '.join(AUDIO_TYPES[extension])} (or leave the content type out).",
            param=param,
            code="unsupported_file_type",
        )
    if not data:
        raise ApiError(400, "The audio file is empty.", param=param, code="invalid_value")
    return MediaFile(name or f"audio.{extension}", data, AUDIO_TYPES[extension][0] if content_type in UNTYPED else content_type)


def measured(file: MediaFile, param: str = "file") -> Audio:
    """The file's duration (see the module docstring), within MAX_AUDIO_SECONDS."""
    seconds = _read_length(file.data)
    audio = Audio(file, seconds, True) if seconds is not None else Audio(file, len(file.data) / ESTIMATE_BYTES_PER_SECOND, False)
    if audio.seconds > MAX_AUDIO_SECONDS:
        how = "lasts" if audio.measured else f"is estimated from its size (at {ESTIMATE_BYTES_PER_SECOND * 8 // 1000} kbit/s) to last"
        raise ApiError(
            400,
            f"The audio {how} {audio.seconds:,.0f} seconds, over the limit of {MAX_AUDIO_SECONDS:,} seconds; split it.",
            param=param,
            code="audio_too_long",
        )
    return audio


def _read_length(data: bytes) -> float | None:
    try:
        found = mutagen.File(io.BytesIO(data))
    except Exception:  # mutagen raises its own errors, and struct/ValueError on damaged headers
        return None
    length = getattr(getattr(found, "info", None), "length", None)
    if not isinstance(length, (int, float)) or math.isnan(length) or length < 0:
        return None
    return float(length)


def sniffed_extension(data: bytes) -> str:
    """The audio type its first bytes say, for data sent without a name or content type ("" if unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return ""
