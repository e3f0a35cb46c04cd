// The market of the trading demo (the Auth0 talk's stock-trading agent): a fixed table of made-up
// companies and their prices, so a demo and a test see the same numbers every time. Money is kept
// in whole US cents: Cedar has integers only, and a policy compares a buy's cost with the
// person's limit in the same unit.

/** A listed stock and its price. */
export interface Stock {
  /** The ticker symbol, upper case, as tools take it. */
  readonly symbol: string
  readonly name: string
  /** The price of one share, in US cents. */
  readonly priceCents: number
}

/** The stocks for sale and their prices; they never move. */
export const STOCKS = [
  { symbol: 'ATKO', name: 'Atko Corporation', priceCents: 14_218 },
  { symbol: 'ZEKO', name: 'Zeko Advanced Systems', priceCents: 5_340 },
  { symbol: 'LMNL', name: 'Luminal Robotics', priceCents: 875 },
  { symbol: 'HRBR', name: 'Harbor Freightways', priceCents: 6_120 },
  { symbol: 'QNTM', name: 'Quantum Mills', priceCents: 120_450 },
  { symbol: 'GRDN', name: 'Guardian Biotech', priceCents: 2_705 },
] as const satisfies readonly Stock[]

/** One of the listed symbols. */
export type StockSymbol = (typeof STOCKS)[number]['symbol']

/** The listed symbols, in the table's order. */
export const SYMBOLS = STOCKS.map((stock) => stock.symbol) as [StockSymbol, ...StockSymbol[]]

/** A stock of the table. */
export type ListedStock = (typeof STOCKS)[number]

/** The stock of a listed symbol. */
export function stockOf(symbol: StockSymbol): ListedStock {
  const stock = STOCKS.find((candidate) => candidate.symbol === symbol)
  // The input schemas admit listed symbols only, so this is a programming error.
  if (stock === undefined) throw new Error(`${symbol} is not listed`)
  return stock
}

const DOLLARS = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' })

/** Cents as a person reads them: `$1,234.56`. */
export function dollars(cents: number): string {
  return DOLLARS.format(cents / 100)
}
