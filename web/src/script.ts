// The plain-script build: <script src="track.js"></script> defines window.track.
import { track } from "./track";

declare global {
  interface Window {
    track: typeof track;
  }
}

window.track = track;
