//! How text becomes words, for the query parser (a quoted phrase is a run of tokens) and for
//! evaluating a query on a log. The index uses the same rule (`index::TOKENIZER`: tantivy's
//! simple tokenizer and lower-caser), so a word matches a log exactly when its tokens occur in
//! a field.

/// Splits text into lower-case tokens of letters and digits; everything else separates.
pub fn tokenize(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}
