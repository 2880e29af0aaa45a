"""From a trained pair to maps: significant X-features, Excitation Backprop, overlays."""
