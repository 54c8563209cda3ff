//! What a failed form shows: one message per field, in the order the fields
//! stand on the page, for the summary at the top and beside each field.

use std::borrow::Cow;

/// Field name → message, one per field, in form order.
///
/// Built with [`FieldErrors::in_order`], a message lands at its field's place
/// in the form whatever order the checks ran in; otherwise messages keep the
/// order they were added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    order: &'static [&'static str],
    messages: Vec<(Cow<'static, str>, String)>,
}

impl FieldErrors {
    /// No messages yet; they keep the order they are added in.
    pub fn new() -> Self {
        Self::default()
    }

    /// No messages yet; they are kept in the order of `fields` (the form's
    /// field names, top to bottom; a field not named goes last).
    pub fn in_order(fields: &'static [&'static str]) -> Self {
        Self {
            order: fields,
            messages: Vec::new(),
        }
    }

    fn position(&self, field: &str) -> usize {
        self.order
            .iter()
            .position(|f| *f == field)
            .unwrap_or(self.order.len())
    }

    /// Sets the message for `field`, replacing an earlier one.
    pub fn add(&mut self, field: impl Into<Cow<'static, str>>, message: impl Into<String>) {
        let field = field.into();
        let message = message.into();
        if let Some(entry) = self.messages.iter_mut().find(|(f, _)| *f == field) {
            entry.1 = message;
            return;
        }
        let place = self.position(&field);
        let at = self
            .messages
            .iter()
            .position(|(f, _)| self.position(f) > place)
            .unwrap_or(self.messages.len());
        self.messages.insert(at, (field, message));
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.messages
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Whether `field` has a message (for the `invalid` class).
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// No messages.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// How many fields have a message.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// The fields with a message, in form order.
    pub fn fields(&self) -> Vec<&str> {
        self.messages.iter().map(|(f, _)| f.as_ref()).collect()
    }

    /// `(field, message)` in form order, for the summary.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.messages.iter().map(|(f, m)| (f.as_ref(), m.as_str()))
    }

    /// Adds every message of `other`.
    pub fn extend(&mut self, other: FieldErrors) {
        for (field, message) in other.messages {
            self.add(field, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stand_in_form_order_one_per_field() {
        let mut errors = FieldErrors::in_order(&["name", "image", "port"]);
        errors.add("port", "a port");
        errors.add("name", "a name");
        errors.add("other", "last");
        errors.add("image", "an image");
        errors.add("port", "the port, again");
        assert_eq!(errors.fields(), ["name", "image", "port", "other"]);
        assert_eq!(errors.get("port"), Some("the port, again"));
        assert!(errors.has("name") && !errors.has("cpu"));
        assert_eq!(errors.len(), 4);
    }

    /// The shared field macro and summary, as every form uses them.
    #[derive(askama::Template)]
    #[template(
        ext = "html",
        source = r#"{% import "partials/form.html" as f %}
{%- call f::summary(errors) %}{% endcall %}
{%- call(part) f::field("name", "Name", errors.get("name"), value = value, help = true) %}
  {%- if part == "attrs" %} required{% else if part == "help" %}Lower-case <code>only</code>.{% endif %}
{%- endcall %}
{%- call(part) f::field("kind", "Kind", errors.get("kind"), kind = "select") %}
  {%- if part == "options" %}<option value="a">A</option>{% endif %}
{%- endcall %}"#
    )]
    struct Sample<'a> {
        errors: &'a FieldErrors,
        value: &'a str,
    }

    #[test]
    fn the_field_macro_links_label_help_and_message() {
        use askama::Template;
        let mut errors = FieldErrors::in_order(&["name", "kind"]);
        errors.add("name", "Use <lower> case.");
        let html = Sample {
            errors: &errors,
            value: "Bad\"Name",
        }
        .render()
        .expect("renders");
        assert!(
            html.contains(r##"<a href="#name">Use &#60;lower&#62; case.</a>"##),
            "{html}"
        );
        assert!(html.contains(r#"<div class="field invalid">"#), "{html}");
        assert!(
            html.contains(r#"value="Bad&#34;Name" required aria-describedby="name-help name-error" aria-invalid="true">"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<span class="help" id="name-help">Lower-case <code>only</code>.</span>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<span class="error" id="name-error">Use &#60;lower&#62; case.</span>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<select id="kind" name="kind"><option value="a">A</option>"#),
            "{html}"
        );
        assert_eq!(html.matches("aria-invalid").count(), 1, "{html}");
    }

    #[test]
    fn without_an_order_messages_keep_theirs() {
        let mut errors = FieldErrors::new();
        errors.add("b", "first");
        errors.add(String::from("a"), "second");
        let all: Vec<_> = errors.iter().collect();
        assert_eq!(all, [("b", "first"), ("a", "second")]);
    }
}
