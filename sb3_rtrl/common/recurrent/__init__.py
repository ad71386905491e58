"""The recurrent pieces the algorithms share: the policies, their keywords and presets, the rollout buffer and its samples."""
