/**
 * Text for a chat channel's markup. Notifications quote what events chose (an ActionTrail event's project and
 * logstore names, a key alias): in a chat message such a string must stay text, never a mention that pings a
 * whole channel, a link a reader follows, or a terminal escape. Each channel's own syntax is escaped as its
 * service documents it where it documents one (Slack: `&`, `<`, `>` as HTML entities); DingTalk's markdown and
 * Lark's text message document no escape, so their markup characters become the full-width forms, which read
 * the same and build nothing. Every chat client also links a bare URL or host name: a zero-width space after
 * `://` and after each dot leaves the text as it reads and breaks the link.
 */
export type ChatMarkup = 'slack' | 'dingtalk' | 'lark';

/** C0 and C1 control characters, the line feed aside (a message has lines). */
const isControl = (c: string): boolean => c !== '\n' && /\p{Cc}/u.test(c);

const ZERO_WIDTH_SPACE = '\u200b';

const unlinked = (s: string): string =>
  s.replace(/:\/\//g, `:${ZERO_WIDTH_SPACE}//`).replace(/\.(?=[\p{L}\p{N}])/gu, `.${ZERO_WIDTH_SPACE}`);

const SLACK: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };
/** `<…>` is a Lark mention (`<at user_id="all">`); DingTalk's markdown adds `[text](url)`, images and code. */
const LARK: Record<string, string> = { '<': '＜', '>': '＞' };
const DINGTALK: Record<string, string> = { ...LARK, '[': '［', ']': '］', '`': '｀' };
const TABLES: Record<ChatMarkup, Record<string, string>> = { slack: SLACK, dingtalk: DINGTALK, lark: LARK };

/** `text` as inert text in `markup`: no mention, no link, no control character. */
export function chatText(markup: ChatMarkup, text: string): string {
  const table = TABLES[markup];
  const plain = [...text].filter((c) => !isControl(c)).join('');
  return [...unlinked(plain)].map((c) => table[c] ?? c).join('');
}
