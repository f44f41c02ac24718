// The source kinds the server registered (webapp/streams/kinds.py), rendered by the dashboard into
// <script type="application/json" id="tb-kinds">, and each kind's option fields: the named inputs
// of its <span class="kind-options" data-kind="URL"> in the pane template.

/** Spec keys the dashboard itself uses: an option field with one of these names is ignored. */
export const RESERVED_NAMES = new Set(["src", "filter", "hl", "wrap", "run", "cap"]);

const FIELDS = "input[name]:not([type=radio]), select[name], textarea[name]";

function validKind(kind) {
  return Boolean(kind) && typeof kind.url === "string" && /^[\w-]+$/.test(kind.url);
}

function readKinds() {
  const element = document.getElementById("tb-kinds");
  if (!element) return [];
  try {
    const parsed = JSON.parse(element.textContent);
    return Array.isArray(parsed) ? parsed.filter(validKind).map((kind) => Object.freeze({
      slug: String(kind.slug ?? kind.url), url: kind.url, label: String(kind.label ?? kind.url),
      resumable: kind.resumable === true,
    })) : [];
  } catch {
    return [];
  }
}

/** The registered kinds: {slug, url, label, resumable}, in the server's order. */
export const KINDS = Object.freeze(readKinds());

/** The WebSocket path segments (`/ws/<url>/<id>/`) of the registered kinds. */
export const KIND_URLS = Object.freeze(KINDS.map((kind) => kind.url));

/** The kind whose URL segment is `url`, or null. */
export function kindByUrl(url) {
  return KINDS.find((kind) => kind.url === url) || null;
}

/** The kind of a source value "url:id" (a registered url, a decimal id), or null. */
export function kindOfSource(src) {
  const match = /^([\w-]+):(\d+)$/.exec(String(src ?? ""));
  return match ? kindByUrl(match[1]) : null;
}

/** The named option fields of kind `url` inside `root` (a pane or the pane template's content). */
export function optionFields(root, url) {
  const fields = [];
  for (const group of root.querySelectorAll(".kind-options")) {
    if (group.dataset.kind !== url) continue;
    for (const field of group.querySelectorAll(FIELDS)) {
      if (!RESERVED_NAMES.has(field.name)) fields.push(field);
    }
  }
  return fields;
}

/** Every named option field of every kind inside `root`. */
export function allOptionFields(root) {
  return KIND_URLS.flatMap((url) => optionFields(root, url));
}

/** The value a field holds now, as a string (a checkbox: its value when checked, else ""). */
export function fieldValue(field) {
  if (field.type === "checkbox") return field.checked ? field.value : "";
  return field.value;
}

/** Put a spec value into a field. */
export function setFieldValue(field, value) {
  if (field.type === "checkbox") field.checked = value === field.value;
  else field.value = value;
}

/** The value a field starts with in the page as served, as a string. */
export function fieldDefault(field) {
  if (field.type === "checkbox") return field.defaultChecked ? field.value : "";
  if (field.tagName === "SELECT") {
    const chosen = [...field.options].find((option) => option.defaultSelected) || field.options[0];
    return chosen ? chosen.value : "";
  }
  return field.defaultValue;
}

/** {name: default value} of every kind's option fields (the first field of a name wins). */
export function optionDefaults(root) {
  const defaults = {};
  for (const field of allOptionFields(root)) {
    if (!(field.name in defaults)) defaults[field.name] = fieldDefault(field);
  }
  return defaults;
}

/** The option names of kind `url` inside `root`, in page order, without repeats. */
export function optionNames(root, url) {
  return [...new Set(optionFields(root, url).map((field) => field.name))];
}
