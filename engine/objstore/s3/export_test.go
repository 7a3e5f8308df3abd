package s3

// EncodeTags exposes encodeTags to the tests.
var EncodeTags = encodeTags
