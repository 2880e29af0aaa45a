"""The paper's measures over namings: coverage, purity, matchings, agreement, distrust."""
