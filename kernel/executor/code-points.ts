/**
 * Jupyter (protocol >= 5.2) counts cursor positions in Unicode code points; JavaScript strings
 * and the TypeScript compiler count UTF-16 code units. An astral character (emoji) is one code
 * point and two code units.
 */
export function codePointsToUtf16(text: string, codePoints: number): number {
  let units = 0;
  let points = 0;
  while (points < codePoints && units < text.length) {
    const code = text.codePointAt(units)!;
    units += code > 0xffff ? 2 : 1;
    points++;
  }
  return units;
}

export function utf16ToCodePoints(text: string, units: number): number {
  let points = 0;
  for (let i = 0; i < units && i < text.length; points++) {
    i += text.codePointAt(i)! > 0xffff ? 2 : 1;
  }
  return points;
}
