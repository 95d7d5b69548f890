/** The funnel's counts and its finest grouping, shared by the roll-ups and the page's reader. */
export interface FunnelCounts {
  planned: number;
  sent: number;
  replied: number;
  optedOut: number;
  handedOff: number;
  converted: number;
}

export interface FunnelRow extends FunnelCounts {
  campaign: string;
  step: number | null;
  variant: number | null;
  composer: string | null;
}
