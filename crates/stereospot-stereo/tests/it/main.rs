//! Integration tests of the stereo engine. The depth tests compare against outputs of the official
//! Depth Anything V2 code kept in `tests/fixtures/` (made by `scripts/stereo/make_fixtures.py`);
//! they need the ONNX Runtime library that `scripts/deps.sh test` installs.

mod depth;
mod helpers;
